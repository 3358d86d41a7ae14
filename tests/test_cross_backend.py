"""A `.keras` file saved on one Keras backend loads on another and gives the same test MSE (issue 11).

Each backend runs in its own subprocess (a process has one Keras backend): one trains and saves the dense
autoencoder and the VAE with its custom sampling layer; another loads both files and measures them again
on the real MNIST test images. Every installed backend is paired with every other one.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = [name for name in ("jax", "tensorflow", "torch") if importlib.util.find_spec(name) is not None]
MODELS = ("dense", "vae")
SIGNIFICANT_DIGITS = 3


def test_mse_values_agreeing_to_3_digits_pass_and_others_fail():
    assert same_to_significant_digits(0.0412349, 0.0412351)
    assert not same_to_significant_digits(0.0412, 0.0415)


def same_to_significant_digits(first: float, second: float, digits: int = SIGNIFICANT_DIGITS) -> bool:
    """True when the two numbers differ by less than half a unit in the ``digits``-th significant digit."""
    return abs(first - second) <= 0.5 * 10.0 ** -(digits - 1) * max(abs(first), abs(second))


def run_on_backend(backend: str, *arguments: str) -> dict:
    """Run this file as a script under ``KERAS_BACKEND=backend``; return the JSON it prints last."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, __file__, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{backend} {arguments[0]} failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Per backend: the folder with its two .keras files, and the test MSEs it measured before saving."""
    results = {}
    for backend in BACKENDS:
        folder = tmp_path_factory.mktemp(f"saved-on-{backend}")
        results[backend] = (folder, run_on_backend(backend, "save", str(folder)))
    return results


@pytest.mark.parametrize(
    ("source", "target"),
    list(itertools.permutations(BACKENDS, 2)),
    ids=[f"{a}-to-{b}" for a, b in itertools.permutations(BACKENDS, 2)],
)
def test_model_saved_on_one_backend_loads_on_another(saved, source, target):
    folder, before = saved[source]
    after = run_on_backend(target, "load", str(folder))
    assert after["backend"] == target and before["backend"] == source
    assert after["sampling_layer"] == "GaussianSampling", "the VAE's custom layer is rebuilt on loading"
    for model in MODELS:
        # Trained, not just saved: better than predicting the mean training image for every digit.
        assert before[model] < before["mean_image"]
        assert same_to_significant_digits(before[model], after[model]), (model, before[model], after[model])


def test_sampling_layer_uses_only_keras_ops_and_random():
    """GaussianSampling.call may use keras.ops and keras.random, and no backend or NumPy directly."""
    from utils.models import GaussianSampling

    tree = ast.parse(textwrap.dedent(inspect.getsource(GaussianSampling)))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            while isinstance(node, ast.Attribute):
                node = node.value
            if isinstance(node, ast.Name):
                roots.add(node.id)
    imported = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert roots <= {"keras", "ops", "self", "super", "layers"}, roots
    assert imported <= {"ops"}, imported


# ---- the subprocess side: run as `python tests/test_cross_backend.py save|load FOLDER` --------------------


def _measure(model, x_test) -> float:
    from utils import metrics

    return float(metrics.mse_per_image(x_test, model.predict(x_test, batch_size=1000, verbose=0)).mean())


def _save(folder: Path) -> dict:
    """Train both models briefly on real digits, measure them on the real test set, and save them."""
    import keras
    import numpy as np

    from utils import config, metrics, models, training

    prepared = training.prepare_mnist(quick=False)
    x_train, x_test = prepared.x_train[:10000], prepared.x_test
    keras.utils.set_random_seed(config.SEED)
    _, _, dense = models.build_dense_autoencoder()
    _, _, vae = models.build_variational_autoencoder(latent_dim=2, seed=config.SEED)
    result = {"backend": keras.backend.backend()}
    for name, model in (("dense", dense), ("vae", vae)):
        model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
        history = model.fit(x_train, x_train, batch_size=256, epochs=2, verbose=0)
        record = training.TrainingRecord(history.history, 0.0, {"epochs": 2}, len(x_train))
        training.save_model(model, folder / f"{name}.keras", record)
        result[name] = _measure(model, x_test)
    mean_image = np.broadcast_to(x_train.mean(axis=0), x_test.shape)
    result["mean_image"] = float(metrics.mse_per_image(x_test, mean_image).mean())
    return result


def _load(folder: Path) -> dict:
    """Load both models saved by another backend and measure them on the real test set."""
    import keras

    from utils import config, models, training

    x_test = training.prepare_mnist(quick=False).x_test
    result = {"backend": keras.backend.backend()}
    builders = {
        "dense": lambda: models.build_dense_autoencoder()[2],
        "vae": lambda: models.build_variational_autoencoder(latent_dim=2, seed=config.SEED)[2],
    }
    for name in MODELS:
        # The series' own loader: the file's and the weights' sha256 and the architecture are checked first.
        model, _ = training.load_saved_model(folder / f"{name}.keras", builders[name])
        result[name] = _measure(model, x_test)
        if name == "vae":
            sampling = [layer for layer in model.layers if isinstance(layer, models.GaussianSampling)]
            result["sampling_layer"] = type(sampling[0]).__name__ if sampling else None
    return result


if __name__ == "__main__":
    action, folder = sys.argv[1], Path(sys.argv[2])
    print(json.dumps(_save(folder) if action == "save" else _load(folder)))
