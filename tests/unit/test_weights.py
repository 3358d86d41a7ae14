"""The shipped weights: checked by sha256 before use, small, and they reproduce their manifest's metrics."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import keras
import numpy as np
import pytest

from tests.conftest import ROOT
from utils import config, preprocessing, recipes, weights
from utils.files import sha256_file

MANIFEST = weights.read_manifest()
SHIPPED = sorted(MANIFEST["models"])


@pytest.fixture(scope="module")
def train_weights():
    """scripts/train_weights.py as a module: the size limits live there, beside the code that writes the files."""
    spec = importlib.util.spec_from_file_location("train_weights", ROOT / "scripts" / "train_weights.py")
    module = importlib.util.module_from_spec(spec)
    had_tensorflow = "tensorflow" in sys.modules
    spec.loader.exec_module(module)
    if not had_tensorflow and "tensorflow" in sys.modules and sys.modules["tensorflow"] is None:
        del sys.modules["tensorflow"]  # undo the script's backend guard: other tests may import TensorFlow
    return module


def test_every_model_the_notebooks_use_ships():
    assert SHIPPED == sorted(recipes.RECIPES), "run `make weights` after adding or renaming a recipe"


def test_sizes_and_manifest_fields(train_weights):
    total = 0
    for name, entry in MANIFEST["models"].items():
        path = weights.WEIGHTS_DIR / entry["file"]
        assert path.stat().st_size == entry["bytes"] <= train_weights.MAX_FILE_BYTES, name
        assert sha256_file(path) == entry["sha256"], f"{name}: the file does not match its manifest"
        total += entry["bytes"]
        assert entry["dtype"] in ("float16", "float32")
        for field in ("recipe", "training", "metrics", "versions", "created"):
            assert entry[field], f"{name}: the manifest lacks {field}"
        assert entry["recipe"]["settings"]["epochs"] >= len(entry["training"]["history"]["loss"]) > 0
        assert {"keras", "backend", "numpy", "python"} <= set(entry["versions"])
        if entry["dtype"] == "float16":
            for key in ("test_mse", "test_psnr", "test_ssim"):
                assert f"{entry['metrics'][key]:.3g}" == f"{entry['metrics']['float32_' + key]:.3g}", (name, key)
    assert total <= train_weights.MAX_TOTAL_BYTES


@pytest.fixture(scope="module")
def prepared():
    return preprocessing.prepare_mnist(quick=False)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_reproduce_their_metrics(name, prepared):
    recipe = recipes.get(name)
    model = recipe.build()
    assert weights.load_into(model, name) == MANIFEST["models"][name]
    measured = recipes.evaluate(model, recipe, prepared)
    expected = MANIFEST["models"][name]["metrics"]
    for key in ("mse", "psnr", "ssim"):
        assert f"{measured[key]:.3g}" == f"{expected['test_' + key]:.3g}", (key, measured[key], expected["test_" + key])


@pytest.fixture
def shipped_copy(tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(weights.WEIGHTS_DIR, folder)
    return folder


def test_a_tampered_file_is_reported_in_one_line_and_never_used(shipped_copy, capsys):
    name = "dense_autoencoder_32d"
    path = shipped_copy / MANIFEST["models"][name]["file"]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x40
    path.write_bytes(bytes(content))
    keras.utils.set_random_seed(config.SEED)
    model = recipes.get(name).build()
    before = [w.copy() for w in model.get_weights()]
    assert weights.load_into(model, name, shipped_copy) is None
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "fail their sha256 check" in message and path.name in message
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)), "weights untouched"


def test_a_missing_file_is_reported(shipped_copy, capsys):
    name = "conv_autoencoder_32d"
    (shipped_copy / MANIFEST["models"][name]["file"]).unlink()
    assert weights.load_into(recipes.get(name).build(), name, shipped_copy) is None
    assert "are missing; they are not used" in capsys.readouterr().err


def test_weights_for_another_architecture_are_refused_clearly():
    edited = recipes.get("dense_autoencoder_16d").build()
    with pytest.raises(weights.ShippedWeightsError, match="An edited model has to be trained"):
        weights.load_into(edited, "dense_autoencoder_32d")


def test_a_model_without_shipped_weights_has_no_entry(shipped_copy, tmp_path):
    assert weights.entry("no_such_model") is None
    assert weights.load_into(recipes.get("dense_autoencoder_32d").build(), "no_such_model") is None
    assert weights.read_manifest(tmp_path / "nowhere.json") == {"format": weights.MANIFEST_FORMAT, "models": {}}


def test_a_manifest_of_another_format_is_refused(shipped_copy):
    manifest = shipped_copy / weights.MANIFEST_PATH.name
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 99}))
    with pytest.raises(weights.ShippedWeightsError, match="has format 99, expected 1"):
        weights.entry("dense_autoencoder_32d", shipped_copy)
