"""The shipped weights: checked by sha256 before use, small, and they reproduce their manifest's metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from utils import config, recipes, training, weights

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = weights.read_manifest()
SHIPPED = sorted(MANIFEST["models"])


def test_every_model_the_notebooks_use_ships():
    assert SHIPPED == sorted(recipes.RECIPES), "run `make weights` after adding or renaming a recipe"


def test_sizes_and_manifest_fields():
    total = 0
    for name, entry in MANIFEST["models"].items():
        path = weights.WEIGHTS_DIR / entry["file"]
        assert path.stat().st_size == entry["bytes"] <= weights.MAX_FILE_BYTES, name
        assert weights.sha256_file(path) == entry["sha256"], f"{name}: the file does not match its manifest"
        total += entry["bytes"]
        assert entry["dtype"] in ("float16", "float32")
        for field in ("recipe", "training", "metrics", "versions", "created"):
            assert entry[field], f"{name}: the manifest lacks {field}"
        assert entry["recipe"]["settings"]["epochs"] >= len(entry["training"]["history"]["loss"]) > 0
        assert {"keras", "backend", "numpy", "python"} <= set(entry["versions"])
        if entry["dtype"] == "float16":
            for key in ("test_mse", "test_psnr", "test_ssim"):
                assert f"{entry['metrics'][key]:.3g}" == f"{entry['metrics']['float32_' + key]:.3g}", (
                    name,
                    key,
                )
    assert total <= weights.MAX_TOTAL_BYTES


@pytest.fixture(scope="module")
def prepared():
    return training.prepare_mnist(quick=False)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_reproduce_their_metrics(name, prepared):
    recipe = recipes.get(name)
    model = recipe.build()
    assert weights.load_into(model, name) is not None
    measured = recipes.evaluate(model, recipe, prepared)
    expected = MANIFEST["models"][name]["metrics"]
    for key in ("mse", "psnr", "ssim"):
        assert f"{measured[key]:.3g}" == f"{expected['test_' + key]:.3g}", (
            key,
            measured[key],
            expected["test_" + key],
        )


def test_shipped_weights_give_the_same_numbers_on_the_other_backend(prepared):
    """This process runs on Keras's default backend; a child process measures every model on JAX."""
    script = (
        "import json, sys\n"
        "from utils import recipes, training, weights\n"
        "prepared = training.prepare_mnist(quick=False)\n"
        "out = {}\n"
        "for name in weights.read_manifest()['models']:\n"
        "    recipe = recipes.get(name); model = recipe.build(); weights.load_into(model, name)\n"
        "    out[name] = recipes.evaluate(model, recipe, prepared)['mse']\n"
        "import keras; print(json.dumps({'backend': keras.backend.backend(), 'mse': out}))\n"
    )
    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "KERAS_BACKEND": other, "AE_QUICK": ""},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == other
    for name, mse in result["mse"].items():
        assert f"{mse:.3g}" == f"{MANIFEST['models'][name]['metrics']['test_mse']:.3g}", (name, other, mse)


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
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)), (
        "weights untouched"
    )


def test_a_missing_file_is_reported(shipped_copy, capsys):
    name = "conv_autoencoder_32d"
    (shipped_copy / MANIFEST["models"][name]["file"]).unlink()
    assert weights.load_into(recipes.get(name).build(), name, shipped_copy) is None
    assert "are missing; they are not used" in capsys.readouterr().err


def test_weights_for_another_architecture_are_refused_clearly():
    edited = recipes.get("dense_autoencoder_16d").build()
    with pytest.raises(weights.ShippedWeightsError, match="An edited model has to be trained"):
        weights.load_into(edited, "dense_autoencoder_32d")


def test_trained_model_prefers_saved_then_shipped_then_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(config.OUTPUT_ENV, str(tmp_path))
    monkeypatch.setenv(config.QUICK_ENV, "1")
    monkeypatch.delenv(config.FROM_SCRATCH_ENV, raising=False)
    prepared = training.prepare_mnist()
    name = "dense_autoencoder_16d"
    model, record = recipes.trained_model(name, prepared)
    assert "Loaded the shipped weights" in capsys.readouterr().out
    assert record.epochs_run == len(MANIFEST["models"][name]["training"]["history"]["loss"])
    monkeypatch.setenv(config.FROM_SCRATCH_ENV, "1")
    trained, trained_record = recipes.trained_model(name, prepared, verbose=False)
    assert "Training dense_autoencoder_16d now" in capsys.readouterr().out
    assert trained_record.epochs_run == 5, "quick mode trains 5 epochs"
    assert training.model_path(name).is_file()
    again, again_record = recipes.trained_model(name, prepared)
    assert "Loaded the model saved in" in capsys.readouterr().out
    assert again_record.history == trained_record.history
    np.testing.assert_allclose(
        again.predict(prepared.x_test[:8], verbose=0),
        trained.predict(prepared.x_test[:8], verbose=0),
        atol=1e-6,
    )


def test_make_weights_smoke_run_writes_a_verified_manifest(tmp_path):
    env = {**os.environ, "AE_QUICK": "1", "AE_OUTPUT_DIR": str(tmp_path / "outputs")}
    command = [
        sys.executable,
        str(ROOT / "scripts" / "train_weights.py"),
        "--only",
        "variational_autoencoder_2d",
    ]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2 and "must not overwrite the shipped weights" in refused.stderr
    folder = tmp_path / "weights"
    done = subprocess.run(
        [*command, "--output", str(folder)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    entry = weights.entry("variational_autoencoder_2d", folder)
    assert entry["training"]["settings"]["epochs"] == 5 and entry["recipe"]["seed"] == config.SEED
    model = recipes.get("variational_autoencoder_2d").build()
    assert weights.load_into(model, "variational_autoencoder_2d", folder) == entry


def test_readme_shows_the_manifest_as_the_script_prints_it():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_weights.py"), "--table"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    table = done.stdout.strip()
    assert table.count("\n| `") == len(SHIPPED), "one row per shipped model"
    assert table in (ROOT / "README.md").read_text(), (
        "README's results table is stale: paste the script's output"
    )
