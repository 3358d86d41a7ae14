"""Every trained model of the series, and the one way a notebook gets it: saved, else shipped, else trained now."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict

import keras
import numpy as np
import pytest

from utils import config, models, preprocessing, recipes, saving, training, weights
from utils.files import sha256_file


@pytest.fixture(scope="module")
def small_prepared():
    """The quick split, cut to 2,000 training images so that the five quick epochs take seconds."""
    quick = preprocessing.prepare_mnist(quick=True)
    return dataclasses.replace(quick, x_train=quick.x_train[:2000], y_train=quick.y_train[:2000])


@pytest.fixture
def from_scratch(quick_outputs, monkeypatch):
    monkeypatch.setenv(config.FROM_SCRATCH_ENV, "1")
    return quick_outputs


def test_every_recipe_builds_its_model_and_names_its_notebook():
    assert len(recipes.RECIPES) == 9
    for name, recipe in recipes.RECIPES.items():
        assert recipe.name == name and 3 <= recipe.notebook <= 11 and recipe.backend in ("jax", "tensorflow")
        model = recipe.build()
        assert model.input_shape == (None, 784) and model.output_shape == (None, 784), name
    assert isinstance(recipes.get("variational_autoencoder_2d").build().layers[1], models.GaussianSampling)
    with pytest.raises(ValueError, match="unknown model 'dense_autoencoder_8d'; the series' models are: dense_"):
        recipes.get("dense_autoencoder_8d")


def test_quick_mode_keeps_only_the_recipe_changes_that_stay_valid():
    conv = recipes.get("conv_autoencoder_32d")
    assert conv.settings == recipes.CONV_SETTINGS
    full, quick = conv.training_settings(quick=False), conv.training_settings(quick=True)
    assert (full.epochs, full.jit_compile) == (recipes.CONV_SETTINGS["epochs"], False)
    assert (quick.epochs, quick.jit_compile) == (5, False), "quick mode trains 5 epochs, still without XLA"
    assert recipes.get("dense_autoencoder_32d_mse").training_settings(quick=True).loss == "mse"
    assert recipes.get("denoising_autoencoder_64d").training_settings(quick=False).epochs == 45


def test_the_denoiser_is_tested_on_fixed_noise(small_prepared):
    denoiser, dense = recipes.get("denoising_autoencoder_64d"), recipes.get("dense_autoencoder_64d")
    noisy = recipes.test_inputs(denoiser, small_prepared)
    assert recipes.test_inputs(dense, small_prepared) is small_prepared.x_test
    assert not np.array_equal(noisy, small_prepared.x_test) and 0 <= noisy.min() and noisy.max() <= 1
    assert np.array_equal(noisy, recipes.test_inputs(denoiser, small_prepared)), "the same noise every time"


def test_binarize_draws_each_pixel_as_one_with_its_grey_level_as_probability():
    grey = np.tile(np.linspace(0, 1, 784, dtype=np.float32), (400, 1))
    binary = preprocessing.binarize(grey, seed=7)
    assert binary.dtype == np.float32 and set(np.unique(binary)) == {0.0, 1.0}
    assert not binary[:, 0].any() and binary[:, -1].all(), "black stays 0 and white stays 1"
    np.testing.assert_allclose(binary.mean(axis=0), grey[0], atol=0.1)  # 400 draws per pixel: 4 sigma < 0.1
    assert abs(binary.mean() - grey.mean()) < 0.005
    assert np.array_equal(binary, preprocessing.binarize(grey, seed=7)), "seeded"
    assert not np.array_equal(binary, preprocessing.binarize(grey, seed=8))
    with pytest.raises(ValueError, match="pixels in \\[0, 1\\]"):
        preprocessing.binarize(grey * 255)


def test_binarized_images_are_fresh_every_epoch_and_seeded(small_prepared):
    batches = recipes.BinarizedImages(small_prepared.x_train, batch_size=500)
    assert len(batches) == 4 and batches.num_images == 2000
    inputs, targets = batches[0]
    assert inputs is targets and inputs.shape == (500, 784) and set(np.unique(inputs)) == {0.0, 1.0}
    grey = small_prepared.x_train[batches.order[:500]]
    assert abs(inputs.mean() - grey.mean()) < 0.01, "about as much ink as the grey images"
    assert np.all(inputs[grey == 0] == 0) and np.all(inputs[grey == 1] == 1)
    assert np.array_equal(inputs, recipes.BinarizedImages(small_prepared.x_train, batch_size=500)[0][0])
    batches.on_epoch_end()
    again = batches[0][0]
    assert not np.array_equal(again, inputs), "a new draw (and a new order) every epoch"


def test_the_binarized_vae_is_trained_and_tested_on_binary_images(small_prepared, monkeypatch):
    recipe = recipes.get("variational_autoencoder_32d_binarized")
    assert recipe.binarized and recipe.notebook == 11
    assert models.architecture(recipe.build()) == models.architecture(
        recipes.get("variational_autoencoder_32d").build()
    ), "notebook 10's 32-number VAE"
    tested = recipes.test_inputs(recipe, small_prepared)
    assert set(np.unique(tested)) == {0.0, 1.0} and tested.shape == small_prepared.x_test.shape
    assert np.array_equal(tested, recipes.test_inputs(recipe, small_prepared)), "the same draw every time"
    given = {}

    def record_arguments(model, inputs, targets, validation, settings, verbose):
        given.update(inputs=inputs, targets=targets, validation=validation)
        return "record"

    monkeypatch.setattr(training, "train_autoencoder", record_arguments)
    recipes.train(recipe, small_prepared, verbose=False)
    assert isinstance(given["inputs"], recipes.BinarizedImages) and given["targets"] is None
    assert given["inputs"].clean is small_prepared.x_train
    inputs, targets = given["validation"]
    expected = preprocessing.binarize(small_prepared.x_val, seed=recipes.VALIDATION_BINARIZATION_SEED)
    assert np.array_equal(inputs, expected) and np.array_equal(targets, expected), "binary targets too"


def test_trained_model_trains_saves_and_then_loads(small_prepared, from_scratch, capsys):
    name = "dense_autoencoder_32d"
    autoencoder, record = recipes.trained_model(name, small_prepared, verbose=False)
    assert f"Training {name} now" in capsys.readouterr().out
    assert record.epochs_run == 5 and record.seconds > 0 and record.train_size == 2000
    losses = record.history["val_loss"]
    assert losses[-1] < losses[0], "five epochs on real digits must lower the validation loss"
    path = saving.model_path(name)
    assert path == from_scratch / "models" / f"{name}.keras"
    saved_record = json.loads(path.with_suffix(".json").read_text())
    assert saved_record["settings"]["epochs"] == 5
    assert saved_record["model_file_sha256"] == sha256_file(path)
    assert saved_record["weights_sha256"] == saving.weights_sha256(autoencoder)
    assert saved_record["architecture_sha256"] == models.architecture_fingerprint(models.build_dense_autoencoder()[2])
    loaded, loaded_record = recipes.trained_model(name, small_prepared)
    assert "Loaded the model saved in" in capsys.readouterr().out
    assert loaded_record.history == record.history
    np.testing.assert_allclose(
        loaded.predict(small_prepared.x_test[:20], verbose=0),
        autoencoder.predict(small_prepared.x_test[:20], verbose=0),
        atol=1e-6,
    )


def test_a_damaged_saved_model_is_trained_again(small_prepared, from_scratch, capsys):
    name = "dense_autoencoder_32d"
    path = saving.model_path(name)
    path.write_bytes(b"not a keras file")
    path.with_suffix(".json").write_text(json.dumps(asdict(saving.TrainingRecord({"loss": [1.0]}, 1.0, {}, 1))))
    _, record = recipes.trained_model(name, small_prepared, verbose=False)
    message = capsys.readouterr().err.strip()
    assert message.endswith("training it again.") and len(message.splitlines()) == 1
    assert str(path.with_suffix(".json")) in message, "the record without checksums is the file named"
    assert record.epochs_run == 5
    assert keras.models.load_model(path) is not None


def test_trained_model_prefers_saved_then_shipped_then_trains(small_prepared, quick_outputs, monkeypatch, capsys):
    monkeypatch.delenv(config.FROM_SCRATCH_ENV, raising=False)
    name = "dense_autoencoder_16d"
    shipped = weights.entry(name)
    model, record = recipes.trained_model(name, small_prepared)
    assert "Loaded the shipped weights" in capsys.readouterr().out
    assert record.epochs_run == len(shipped["training"]["history"]["loss"])
    assert not saving.model_path(name).exists(), "shipped weights are not copied to outputs/"
    monkeypatch.setenv(config.FROM_SCRATCH_ENV, "1")
    trained, trained_record = recipes.trained_model(name, small_prepared, verbose=False)
    assert f"Training {name} now" in capsys.readouterr().out
    assert trained_record.epochs_run == 5, "quick mode trains 5 epochs"
    assert saving.model_path(name).is_file()
    monkeypatch.delenv(config.FROM_SCRATCH_ENV)
    again, again_record = recipes.trained_model(name, small_prepared)
    assert "Loaded the model saved in" in capsys.readouterr().out, "a model a notebook saved comes first"
    assert again_record.history == trained_record.history
    np.testing.assert_allclose(
        again.predict(small_prepared.x_test[:8], verbose=0),
        trained.predict(small_prepared.x_test[:8], verbose=0),
        atol=1e-6,
    )


def test_a_damaged_saved_model_falls_back_to_the_shipped_weights(small_prepared, quick_outputs, monkeypatch, capsys):
    monkeypatch.delenv(config.FROM_SCRATCH_ENV, raising=False)
    name = "variational_autoencoder_2d"
    path = saving.model_path(name)
    path.write_bytes(b"not a keras file")
    _, record = recipes.trained_model(name, small_prepared)
    captured = capsys.readouterr()
    message = captured.err.strip()
    assert len(message.splitlines()) == 1 and message.endswith("using the shipped weights instead.")
    assert "Loaded the shipped weights" in captured.out
    assert record.epochs_run == len(weights.entry(name)["training"]["history"]["loss"])


def test_train_feeds_the_denoiser_fresh_noise_and_clean_targets(small_prepared, monkeypatch):
    """What recipes.train hands to training.train_autoencoder for notebook 08's model (no training here)."""
    given = {}

    def record_arguments(model, inputs, targets, validation, settings, verbose):
        given.update(model=model, inputs=inputs, targets=targets, validation=validation, settings=settings)
        return "record"

    monkeypatch.setattr(training, "train_autoencoder", record_arguments)
    model, record = recipes.train(recipes.get("denoising_autoencoder_64d"), small_prepared, verbose=False)
    assert record == "record" and given["model"] is model
    assert model.layers[0].layers[0].units == recipes.DENOISER_HIDDEN_UNITS[0]
    batches = given["inputs"]
    assert isinstance(batches, training.NoisyImages) and given["targets"] is None
    assert batches.sigma == recipes.DENOISING_SIGMA and batches.clean is small_prepared.x_train
    noisy_val, clean_val = given["validation"]
    assert clean_val is small_prepared.x_val
    expected = preprocessing.add_gaussian_noise(
        small_prepared.x_val, recipes.DENOISING_SIGMA, seed=recipes.VALIDATION_NOISE_SEED
    )
    assert np.array_equal(noisy_val, expected), "fixed validation noise"
    dense_model, _ = recipes.train(recipes.get("dense_autoencoder_64d"), small_prepared, verbose=False)
    assert given["inputs"] is given["targets"] is small_prepared.x_train and given["model"] is dense_model


def test_training_settings_follow_quick_mode(monkeypatch):
    monkeypatch.setenv(config.QUICK_ENV, "1")
    assert recipes.get("dense_autoencoder_32d").training_settings() == training.default_settings(quick=True)
