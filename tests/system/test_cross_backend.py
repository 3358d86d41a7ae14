"""A `.keras` file saved on one Keras backend loads on another and gives the same test MSE.

Each backend runs in its own subprocess (a process has one Keras backend): one trains and saves the dense
autoencoder and the VAE with its custom sampling layer; another loads both pairs with the series' own checked
loader and measures them again on the real MNIST test images. Every installed backend is paired with every
other one. The shipped weights, too, give their manifest's numbers on the backend this process does not use.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BACKENDS = [name for name in ("jax", "tensorflow", "torch") if importlib.util.find_spec(name) is not None]
MODELS = ("dense", "vae")
SIGNIFICANT_DIGITS = 3


def same_to_significant_digits(first: float, second: float, digits: int = SIGNIFICANT_DIGITS) -> bool:
    """True when the two numbers differ by less than half a unit in the ``digits``-th significant digit."""
    return abs(first - second) <= 0.5 * 10.0 ** -(digits - 1) * max(abs(first), abs(second))


def test_mse_values_agreeing_to_3_digits_pass_and_others_fail():
    assert same_to_significant_digits(0.0412349, 0.0412351)
    assert not same_to_significant_digits(0.0412, 0.0415)


def run_on_backend(backend: str, *arguments: str, **env: str) -> dict:
    """Run this file as a script under ``KERAS_BACKEND=backend``; return the JSON it prints last."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("AE_")}
    environment = {**base, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    done = subprocess.run(
        [sys.executable, __file__, *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{backend} {arguments[0]} failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Per backend: the output folder with its two saved pairs, and the test MSEs it measured before saving."""
    results = {}
    for backend in BACKENDS:
        folder = tmp_path_factory.mktemp(f"saved-on-{backend}")
        results[backend] = (folder, run_on_backend(backend, "save", AE_OUTPUT_DIR=str(folder)))
    return results


@pytest.mark.parametrize(
    ("source", "target"),
    list(itertools.permutations(BACKENDS, 2)),
    ids=[f"{a}-to-{b}" for a, b in itertools.permutations(BACKENDS, 2)],
)
def test_model_saved_on_one_backend_loads_on_another(saved, source, target):
    folder, before = saved[source]
    after = run_on_backend(target, "load", AE_OUTPUT_DIR=str(folder))
    assert after["backend"] == target and before["backend"] == source
    assert after["sampling_layer"] == "GaussianSampling", "the VAE's custom layer is rebuilt on loading"
    for model in MODELS:
        # Trained, not just saved: better than predicting the mean training image for every digit.
        assert before[model] < before["mean_image"]
        assert same_to_significant_digits(before[model], after[model]), (model, before[model], after[model])


def test_shipped_weights_give_the_same_numbers_on_the_other_backend():
    """This process runs on Keras's default backend (the unit tests measure it there); a child measures the other."""
    import keras

    from utils import weights

    manifest = weights.read_manifest()
    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    result = run_on_backend(other, "shipped")
    assert result["backend"] == other
    assert sorted(result["mse"]) == sorted(manifest["models"])
    for name, mse in result["mse"].items():
        assert f"{mse:.3g}" == f"{manifest['models'][name]['metrics']['test_mse']:.3g}", (name, other, mse)


# ---- the subprocess side: run as `python tests/system/test_cross_backend.py save|load|shipped` ----------------


def _measure(model, x_test) -> float:
    from utils import metrics

    return float(metrics.mse_per_image(x_test, model.predict(x_test, batch_size=1000, verbose=0)).mean())


def _builders() -> dict:
    from utils import config, models

    return {
        "dense": lambda: models.build_dense_autoencoder()[2],
        "vae": lambda: models.build_variational_autoencoder(latent_dim=2, seed=config.SEED)[2],
    }


def _save() -> dict:
    """Train both models briefly on real digits, measure them on the real test set, and save them with records."""
    import keras
    import numpy as np

    from utils import config, metrics, preprocessing, saving

    prepared = preprocessing.prepare_mnist(quick=False)
    x_train, x_test = prepared.x_train[:10000], prepared.x_test
    keras.utils.set_random_seed(config.SEED)
    result = {"backend": keras.backend.backend()}
    for name, build in _builders().items():
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
        history = model.fit(x_train, x_train, batch_size=256, epochs=2, verbose=0)
        record = saving.TrainingRecord(history.history, 0.0, {"epochs": 2}, len(x_train))
        saving.save(name, model, record)
        result[name] = _measure(model, x_test)
    mean_image = np.broadcast_to(x_train.mean(axis=0), x_test.shape)
    result["mean_image"] = float(metrics.mse_per_image(x_test, mean_image).mean())
    return result


def _load() -> dict:
    """Load both pairs saved by another backend and measure them on the real test set."""
    import keras

    from utils import models, preprocessing, saving

    x_test = preprocessing.prepare_mnist(quick=False).x_test
    result = {"backend": keras.backend.backend()}
    for name, build in _builders().items():
        # The series' own loader: the file's and the weights' sha256 and the architecture are checked first.
        loaded = saving.load(name, build)
        assert loaded is not None, f"{name}: the pair saved on another backend was not accepted"
        model, _ = loaded
        result[name] = _measure(model, x_test)
        if name == "vae":
            sampling = [layer for layer in model.layers if isinstance(layer, models.GaussianSampling)]
            result["sampling_layer"] = type(sampling[0]).__name__ if sampling else None
    return result


def _shipped() -> dict:
    """Every shipped model's test MSE on this backend."""
    import keras

    from utils import preprocessing, recipes, weights

    prepared = preprocessing.prepare_mnist(quick=False)
    mse = {}
    for name in weights.read_manifest()["models"]:
        recipe = recipes.get(name)
        model = recipe.build()
        assert weights.load_into(model, name) is not None, name
        mse[name] = recipes.evaluate(model, recipe, prepared)["mse"]
    return {"backend": keras.backend.backend(), "mse": mse}


if __name__ == "__main__":
    from utils import course

    course.start_backend(os.environ["KERAS_BACKEND"])  # as the Setup cell does: TensorFlow only when asked for
    action = sys.argv[1]
    print(json.dumps({"save": _save, "load": _load, "shipped": _shipped}[action]()))
