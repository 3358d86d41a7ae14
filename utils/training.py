"""How the series trains: its settings (notebook 03), ``compile`` and ``fit`` with its callbacks, and noisy batches."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from utils import checks, config, preprocessing
from utils.files import (
    FIX,
    describe_write_error,
    publish,
    quiet_failed_file_cleanup,
    remove_stale_parts,
    temporary_beside,
)
from utils.saving import TrainingRecord, has_finite_weights


@dataclass(frozen=True)
class TrainingSettings:
    """How the series trains its dense autoencoder (measured in benchmarks/training_speed.py)."""

    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    cosine_decay: bool = True
    loss: str = "binary_crossentropy"
    patience: int = 3
    jit_compile: bool | str = True
    steps_per_execution: int = 1


def default_settings(quick: bool | None = None, **changes) -> TrainingSettings:
    """The series' settings: 30 epochs at most (5 in quick mode), with any field overridden by ``changes``."""
    quick = config.quick_mode() if quick is None else quick
    base = TrainingSettings(epochs=5) if quick else TrainingSettings()
    return TrainingSettings(**{**asdict(base), **changes})


def compile_autoencoder(model: keras.Model, settings: TrainingSettings, train_size: int) -> keras.Model:
    """Compile ``model`` with Adam and the settings' loss; MSE and BCE are tracked as metrics either way.

    With ``cosine_decay`` the learning rate falls from ``learning_rate`` to 2% of it over all the epochs.
    """
    learning_rate = settings.learning_rate
    if settings.cosine_decay:
        total_steps = int(np.ceil(train_size / settings.batch_size)) * settings.epochs
        learning_rate = keras.optimizers.schedules.CosineDecay(settings.learning_rate, total_steps, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=settings.loss,
        metrics=[keras.metrics.MeanSquaredError(name="mse"), keras.metrics.BinaryCrossentropy(name="bce")],
        jit_compile=settings.jit_compile,
        steps_per_execution=settings.steps_per_execution,
    )
    return model


class TrainingDivergedError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite; the model is unusable and was not saved."""


class Checkpoint(keras.callbacks.ModelCheckpoint):
    """Keras's ``ModelCheckpoint``, made safe for shared and full disks, and for diverging runs.

    Each save goes to a temporary file of this run's own and is renamed over ``filepath`` when complete,
    so a full disk or a second kernel saving the same checkpoint never leaves a half-written or locked file.
    A failed save is one line, and checkpointing stops for the run; training goes on. When the outputs
    folder cannot be written, it does nothing. A model with NaN or infinite weights is never saved: a
    diverging run can report a finite (huge) validation loss in its first epoch, which the plain callback
    would keep as the best so far.
    """

    def __init__(self, filepath: str | Path, **kwargs):
        super().__init__(str(filepath), **{"initial_value_threshold": float("inf"), **kwargs})
        self.stopped = config.outputs_problem() is not None

    def on_epoch_end(self, epoch, logs=None):
        if not self.stopped and has_finite_weights(self.model):
            super().on_epoch_end(epoch, logs)

    def _save_model(self, epoch, batch, logs):
        target = Path(self._get_file_path(epoch, batch, logs))
        original, temporary, failure = self.filepath, None, None
        with quiet_failed_file_cleanup():
            try:
                remove_stale_parts(target)
                temporary = temporary_beside(target, suffix=".part" + "".join(target.suffixes[-2:]))
                self.filepath = str(temporary)
                super()._save_model(epoch, batch, logs)
                if temporary.stat().st_size:  # Keras wrote it: this epoch is the best so far
                    publish(temporary, target)
            except OSError as error:  # keep no traceback: its frames hold the half-written file open
                failure = OSError(error.errno, error.strerror or str(error))
            finally:
                self.filepath = original
                if temporary is not None:
                    temporary.unlink(missing_ok=True)
        if failure is not None:  # described after the half-written file is gone, so the free space is right
            self.stopped = True
            print(
                f"The checkpoint was not saved, and checkpointing stops for this run: "
                f"{describe_write_error(failure, target)}. {FIX}",
                file=sys.stderr,
            )


class NoisyImages(keras.utils.PyDataset):
    """Batches of ``(noisy, clean)`` images with fresh, seeded Gaussian noise every epoch (notebook 08).

    New noise each epoch means the model never sees the same corrupted image twice, so it cannot
    memorise the noise. The order of the images is reshuffled every epoch, also seeded.
    """

    def __init__(self, clean: np.ndarray, sigma: float, batch_size: int, seed: int = config.SEED, **kwargs):
        super().__init__(**kwargs)
        clean = checks.images(clean, "clean")
        if clean.ndim != 2:
            raise ValueError(f"clean must be a (n, 784) array of images, got {clean.shape}.")
        self.clean, self.sigma = clean, checks.number(sigma, "sigma", low=0)
        self.batch_size, self.seed = checks.integer(batch_size, "batch_size", 1), seed
        self.epoch = 0
        self.order = np.random.default_rng([seed, 0]).permutation(len(clean))

    @property
    def num_images(self) -> int:
        return len(self.clean)

    def __len__(self) -> int:
        return int(np.ceil(len(self.clean) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        clean = self.clean[self.order[index * self.batch_size : (index + 1) * self.batch_size]]
        return preprocessing.add_gaussian_noise(clean, self.sigma, seed=[self.seed, self.epoch, index]), clean

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.clean))


def _check_model_images(images, name: str, shape: tuple | None) -> None:
    """Float images in [0, 1] of the shape the model takes (or gives), named ``name`` in the message."""
    images = checks.images(images, name)
    if shape is not None and images.shape[1:] != shape:
        hint = " Flatten 28x28 images with preprocessing.flatten_images first." if images.ndim == 3 else ""
        raise ValueError(
            f"{name} must have shape (n, {', '.join(map(str, shape))}) to fit the model; got {images.shape}.{hint}"
        )


def _check_training_data(model: keras.Model, inputs, targets, validation) -> None:
    """Clear errors for inputs, targets and validation data the model cannot learn from sensibly."""
    try:
        input_shape, output_shape = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    except (AttributeError, ValueError):  # a model that is not built yet: its shapes are unknown
        input_shape = output_shape = None
    pairs = []
    if isinstance(inputs, keras.utils.PyDataset):
        if targets is not None:
            raise ValueError("a PyDataset yields its own targets: pass targets=None.")
    elif targets is None:
        raise TypeError(
            "targets is None: pass the images the model should output (for an autoencoder, the inputs "
            "themselves), or pass a keras.utils.PyDataset of (input, target) batches as inputs."
        )
    else:
        pairs.append(("inputs", inputs, "targets", targets))
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError("validation must be a pair (validation inputs, validation targets) of NumPy arrays.")
    pairs.append(("validation inputs", validation[0], "validation targets", validation[1]))
    for input_name, given_inputs, target_name, given_targets in pairs:
        _check_model_images(given_inputs, input_name, input_shape)
        _check_model_images(given_targets, target_name, output_shape)
        if len(given_inputs) != len(given_targets):
            raise ValueError(
                f"{input_name} and {target_name} differ in length: {len(given_inputs)} and {len(given_targets)}."
            )


def train_autoencoder(
    model: keras.Model,
    inputs: np.ndarray | keras.utils.PyDataset,
    targets: np.ndarray | None,
    validation: tuple[np.ndarray, np.ndarray],
    settings: TrainingSettings,
    checkpoint_path: Path | None = None,
    verbose: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingRecord:
    """Compile and ``fit`` with early stopping (best weights restored) and an optional best-epoch checkpoint.

    ``inputs`` is an array with ``targets`` beside it, or a ``PyDataset`` of (input, target) batches;
    ``verbose`` prints Keras's line per epoch. Images must be floats in [0, 1]; a NaN or infinite loss
    stops training with TrainingDivergedError.
    """
    _check_training_data(model, inputs, targets, validation)
    if isinstance(inputs, keras.utils.PyDataset):
        train_size, batches = inputs.num_images, {"x": inputs}
    else:
        train_size = len(inputs)
        batches = {"x": inputs, "y": targets, "batch_size": settings.batch_size, "shuffle": True}
    compile_autoencoder(model, settings, train_size=train_size)
    watchers: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True),
    ]
    if checkpoint_path is not None:
        watchers.append(Checkpoint(checkpoint_path, save_best_only=True))
    start = time.perf_counter()
    history = model.fit(
        **batches,
        validation_data=tuple(validation),
        epochs=settings.epochs,
        callbacks=[*watchers, *callbacks],
        verbose=2 if verbose else 0,
    )
    seconds = time.perf_counter() - start
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    if not np.all(np.isfinite(history.get("loss", []))) or not has_finite_weights(model):
        raise TrainingDivergedError(
            f"training stopped in epoch {len(history.get('loss', []))}: the loss became NaN or infinite, "
            f"so the model is unusable and was not saved. Try a smaller learning_rate "
            f"(it was {settings.learning_rate:g}) and check that the data are finite numbers in [0, 1]."
        )
    return TrainingRecord(history, seconds, asdict(settings), train_size)
