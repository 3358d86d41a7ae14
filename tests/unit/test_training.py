"""How the series trains, on real digits: settings, fit with its callbacks, noisy batches, and data it refuses."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.unit.support import one_line
from utils import models, preprocessing, recipes, training


def build_small() -> keras.Sequential:
    return models.build_dense_autoencoder(latent_dim=8, hidden_units=(32,))[2]


@pytest.fixture(scope="module")
def digits(mnist):
    """400 real training digits and 100 validation digits, flat and in [0, 1]."""
    (x_train, _), _ = mnist
    images = preprocessing.flatten_images(preprocessing.scale_images(x_train[:500]))
    return images[:400], images[400:]


def one_epoch(**changes) -> training.TrainingSettings:
    """Short settings for the tests: one epoch unless ``changes`` say otherwise, no XLA compile."""
    return training.default_settings(quick=True, **{"epochs": 1, "batch_size": 64, "jit_compile": False, **changes})


def test_default_settings_and_quick_mode(monkeypatch):
    full = training.default_settings(quick=False)
    assert (full.epochs, full.batch_size, full.loss) == (30, 256, "binary_crossentropy")
    assert training.default_settings(quick=True).epochs == 5
    assert training.default_settings(quick=False, epochs=2, loss="mse").loss == "mse"
    monkeypatch.setenv("AE_QUICK", "1")
    assert training.default_settings().epochs == 5
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        training.default_settings(epoch=3)


def test_training_lowers_the_loss_and_keeps_the_best_epoch(digits, tmp_path):
    train, val = digits
    keras.utils.set_random_seed(1)
    model = build_small()
    settings = training.default_settings(quick=True, epochs=3, batch_size=64, jit_compile=False)
    checkpoint = tmp_path / "best.keras"
    record = training.train_autoencoder(model, train, train, (val, val), settings, checkpoint, verbose=False)
    assert record.epochs_run == 3 and record.train_size == 400 and record.seconds > 0
    assert record.settings == {**record.settings, "epochs": 3, "batch_size": 64}
    assert {"loss", "val_loss", "mse", "val_mse", "bce", "val_bce"} <= set(record.history)
    assert record.history["val_loss"][-1] < record.history["val_loss"][0], "three epochs on real digits help"
    assert checkpoint.is_file(), "the best epoch is checkpointed"
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) < settings.learning_rate, "cosine decay"


def test_verbose_prints_one_keras_line_per_epoch(digits, capsys):
    train, val = digits
    training.train_autoencoder(build_small(), train, train, (val, val), one_epoch(epochs=2), verbose=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if "val_loss" in line]
    assert len(lines) == 2, lines


def test_vae_loss_includes_the_kl_term(digits):
    train, val = digits
    vae = models.build_variational_autoencoder(latent_dim=2, seed=1)[2]
    record = training.train_autoencoder(vae, train, train, (val, val), one_epoch(epochs=2), verbose=False)
    kl = np.array(record.history["val_loss"]) - np.array(record.history["val_bce"])
    assert np.all(kl > 0), "the KL term is part of the loss"


def test_training_on_noisy_batches_uses_the_dataset_size(digits):
    train, val = digits
    batches = training.NoisyImages(train, sigma=recipes.DENOISING_SIGMA, batch_size=64, seed=7)
    record = training.train_autoencoder(build_small(), batches, None, (val, val), one_epoch(), verbose=False)
    assert record.train_size == 400 and record.epochs_run == 1


def test_noisy_images_gives_fresh_seeded_noise(digits):
    images = np.concatenate(digits)
    batches = training.NoisyImages(images, sigma=0.5, batch_size=64, seed=7)
    assert len(batches) == 8 and batches.num_images == 500
    noisy, clean = batches[0]
    assert noisy.shape == clean.shape == (64, 784)
    assert any(np.array_equal(clean[0], row) for row in images), "targets are the clean images"
    assert 0 <= noisy.min() and noisy.max() <= 1 and not np.array_equal(noisy, clean)
    again, _ = training.NoisyImages(images, sigma=0.5, batch_size=64, seed=7)[0]
    assert np.array_equal(noisy, again), "the same seed gives the same first batch"
    batches.on_epoch_end()
    next_noisy, next_clean = batches[0]
    assert not np.array_equal(next_clean, clean), "the order is reshuffled every epoch"
    every_image = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert sorted(map(bytes, every_image)) == sorted(map(bytes, images)), "each epoch covers every image once"


@pytest.mark.parametrize(
    ("arguments", "error", "expected"),
    [
        ({"sigma": np.inf}, ValueError, "sigma must be a finite number >= 0, got inf"),
        ({"sigma": -0.1}, ValueError, "sigma must be a finite number >= 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1, got 0"),
        ({"batch_size": 64.0}, TypeError, "batch_size must be an integer"),
        ({"clean": "reshape"}, ValueError, r"clean must be a \(n, 784\) array of images"),
        ({"clean": "bytes"}, ValueError, "clean must be float images"),
    ],
    ids=["sigma-inf", "sigma-negative", "batch-0", "batch-float", "clean-28x28", "clean-bytes"],
)
def test_noisy_images_refuses_bad_arguments_by_name(digits, mnist, arguments, error, expected):
    train, _ = digits
    clean = {"reshape": train.reshape(-1, 28, 28), "bytes": mnist[0][0][:400]}.get(arguments.get("clean"), train)
    given = {"sigma": 0.5, "batch_size": 64, **arguments, "clean": clean}
    with pytest.raises(error, match=expected):
        training.NoisyImages(**given)


# --------------------------------------------------------------------------- data the model cannot learn from


def with_nan(images: np.ndarray) -> np.ndarray:
    poisoned = images.copy()
    poisoned[5, 300] = np.nan
    return poisoned


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda t, v: (t * 255, t * 255, (v, v)), r"inputs must have pixels in \[0, 1\].*divide by 255"),
        (lambda t, v: (with_nan(t), t, (v, v)), "inputs contains NaN or infinity"),
        (lambda t, v: (t, t - 0.5, (v, v)), r"targets must have pixels in \[0, 1\]"),
        (lambda t, v: (t, t, (v, v * 255)), r"validation targets must have pixels in \[0, 1\]"),
        (lambda t, v: (t, t, (v * 255, v)), r"validation inputs must have pixels in \[0, 1\]"),
        (lambda t, v: (t.reshape(-1, 28, 28), t, (v, v)), r"inputs must have shape \(n, 784\).*flatten_images"),
        (lambda t, v: (t, t[:300], (v, v)), "inputs and targets differ in length: 400 and 300"),
        (lambda t, v: (t, t, (v, v[:50])), "validation inputs and validation targets differ in length"),
    ],
    ids=["0-255", "nan", "shifted-targets", "validation-0-255", "validation-inputs", "28x28", "lengths", "val-lengths"],
)
def test_training_refuses_images_on_the_wrong_scale(digits, tmp_path, make, expected):
    inputs, targets, validation = make(*digits)
    checkpoint = tmp_path / "models" / "scale.keras"
    with pytest.raises(ValueError, match=expected):
        training.train_autoencoder(build_small(), inputs, targets, validation, one_epoch(), checkpoint, verbose=False)
    assert not checkpoint.parent.exists(), "nothing is written for refused data"


def test_training_refuses_targets_none_and_a_lone_validation_array(digits):
    train, val = digits
    with pytest.raises(TypeError, match="targets is None"):
        training.train_autoencoder(build_small(), train, None, (val, val), one_epoch())
    with pytest.raises(TypeError, match=r"validation must be a pair \(validation inputs, validation targets\)"):
        training.train_autoencoder(build_small(), train, train, val, one_epoch())
    batches = training.NoisyImages(train, sigma=0.5, batch_size=64)
    with pytest.raises(ValueError, match="targets=None"):
        training.train_autoencoder(build_small(), batches, train, (val, val), one_epoch())


def test_training_stops_on_a_non_finite_loss_and_saves_nothing(digits, tmp_path):
    train, val = digits
    checkpoint = tmp_path / "models" / "diverging.keras"
    model = build_small()
    with pytest.raises(training.TrainingDivergedError, match="loss became NaN or infinite.*learning_rate"):
        training.train_autoencoder(
            model, train, train, (val, val), one_epoch(learning_rate=1e30, epochs=3), checkpoint, verbose=False
        )
    assert not checkpoint.exists(), "a non-finite model is never checkpointed"


def test_the_checkpoint_is_renamed_into_place_whole_and_leaves_no_part(digits, tmp_path):
    train, val = digits
    checkpoint = tmp_path / "last.weights.h5"
    callback = training.Checkpoint(checkpoint, save_weights_only=True)  # every epoch: the file is the last one
    model = build_small()
    model.compile("adam", "mse")
    model.fit(train, train, validation_data=(val, val), epochs=2, verbose=0, callbacks=[callback])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.weights.h5"]
    restored = build_small()
    restored.load_weights(checkpoint)
    assert all(np.array_equal(a, b) for a, b in zip(restored.get_weights(), model.get_weights(), strict=True))


def test_a_checkpoint_that_cannot_be_written_is_one_line_and_training_goes_on(digits, tmp_path, capsys):
    train, val = digits
    (tmp_path / "a-file").write_text("")
    checkpoint = tmp_path / "a-file" / "best.weights.h5"  # its folder is a file: the write fails
    model = build_small()
    model.compile("adam", "mse")
    callback = training.Checkpoint(checkpoint, save_best_only=True, save_weights_only=True)
    history = model.fit(train, train, validation_data=(val, val), epochs=3, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 3, "training went on"
    line = one_line(capsys.readouterr().err)
    assert line.startswith(
        f"The checkpoint was not saved, and checkpointing stops for this run: could not write {checkpoint}"
    )
    assert callback.stopped
