"""scripts/train_weights.py (`make weights`): a quick smoke run writes verified weights, and README shows its table."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from utils import config, recipes, weights

SCRIPT = ROOT / "scripts" / "train_weights.py"


def test_make_weights_smoke_run_writes_a_verified_manifest(tmp_path):
    env = {**os.environ, "AE_QUICK": "1", "AE_OUTPUT_DIR": str(tmp_path / "outputs")}
    command = [sys.executable, str(SCRIPT), "--only", "variational_autoencoder_2d"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2 and "must not overwrite the shipped weights" in refused.stderr
    folder = tmp_path / "weights"
    done = subprocess.run(
        [*command, "--output", str(folder)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    entry = weights.entry("variational_autoencoder_2d", folder)
    assert entry["training"]["settings"]["epochs"] == 5 and entry["recipe"]["seed"] == config.SEED
    assert sorted(path.name for path in folder.iterdir()) == ["manifest.json", "variational_autoencoder_2d.npz"]
    model = recipes.get("variational_autoencoder_2d").build()
    assert weights.load_into(model, "variational_autoencoder_2d", folder) == entry


def test_readme_shows_the_manifest_as_the_script_prints_it():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--table"], capture_output=True, text=True, timeout=300, check=True
    )
    table = done.stdout.strip()
    assert table.count("\n| `") == len(weights.read_manifest()["models"]), "one row per shipped model"
    assert table in (ROOT / "README.md").read_text(), "README's results table is stale: paste the script's output"
