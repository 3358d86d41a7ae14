"""How the series trains: its settings (notebook 03), ``compile`` and ``fit`` with its callbacks, and noisy batches."""

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from utils import checks, config, preprocessing
from utils.files import replacing, write_or_report
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
    if config.quick_mode() if quick is None else quick:
        changes = {"epochs": 5, **changes}
    return TrainingSettings(**changes)


def compile_autoencoder(model: keras.Model, settings: TrainingSettings, train_size: int) -> keras.Model:
    """Compile with Adam and the settings' loss, tracking MSE and BCE; ``cosine_decay`` ends at 2% of the rate."""
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
    """Keras's ``ModelCheckpoint``, each save renamed into place when whole; a failed save is one line, and the last.

    Training goes on. NaN or infinite weights are never saved: a diverging run can report a finite (huge) val_loss.
    """

    def __init__(self, filepath: str | Path, **kwargs):
        super().__init__(str(filepath), **{"initial_value_threshold": float("inf"), **kwargs})
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        if not self.stopped and has_finite_weights(self.model):
            super().on_epoch_end(epoch, logs)

    def _save_model(self, epoch, batch, logs):
        target = Path(self._get_file_path(epoch, batch, logs))
        if self._should_save_model(epoch, batch, logs, str(target)):
            failed = "The checkpoint was not saved, and checkpointing stops for this run"
            self.stopped = not write_or_report(target, lambda: self._write(target), failed)

    def _write(self, target: Path) -> None:
        with replacing(target, suffix=".part" + "".join(target.suffixes[-2:])) as temporary:
            (self.model.save_weights if self.save_weights_only else self.model.save)(temporary, overwrite=True)


class NoisyImages(keras.utils.PyDataset):
    """Batches of ``(noisy, clean)`` images, reshuffled with fresh seeded noise each epoch, so none is memorised."""

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


def _check_image_pairs(model: keras.Model, pairs: dict[str, tuple]) -> None:
    """Each (inputs, targets) pair, named by its prefix: images in [0, 1] of the model's shapes, of one length."""
    try:
        shapes = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    except (AttributeError, ValueError):  # a model that is not built yet: its shapes are unknown
        shapes = None, None
    for prefix, pair in pairs.items():
        for images, name, shape in zip(pair, (f"{prefix}inputs", f"{prefix}targets"), shapes, strict=True):
            images = checks.images(images, name)
            if shape is not None and images.shape[1:] != shape:
                hint = " Flatten 28x28 images with preprocessing.flatten_images first." if images.ndim == 3 else ""
                fits = ", ".join(map(str, shape))
                raise ValueError(f"{name} must have shape (n, {fits}) to fit the model; got {images.shape}.{hint}")
        if len(pair[0]) != len(pair[1]):
            raise ValueError(f"{prefix}inputs and {prefix}targets differ in length: {len(pair[0])} and {len(pair[1])}.")


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

    ``inputs`` is an array with ``targets`` beside it, or a ``PyDataset`` of (input, target) batches, of floats in
    [0, 1]; ``verbose`` prints Keras's line per epoch. A NaN or infinite loss raises TrainingDivergedError.
    """
    if isinstance(inputs, keras.utils.PyDataset):
        if targets is not None:
            raise ValueError("a PyDataset yields its own targets: pass targets=None.")
        train_size, batches, pairs = inputs.num_images, {"x": inputs}, {}
    elif targets is None:
        raise TypeError(
            "targets is None: pass the images the model should output (for an autoencoder, the inputs "
            "themselves), or pass a keras.utils.PyDataset of (input, target) batches as inputs."
        )
    else:
        train_size, pairs = len(inputs), {"": (inputs, targets)}
        batches = {"x": inputs, "y": targets, "batch_size": settings.batch_size, "shuffle": True}
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError("validation must be a pair (validation inputs, validation targets) of NumPy arrays.")
    _check_image_pairs(model, {**pairs, "validation ": validation})
    compile_autoencoder(model, settings, train_size=train_size)
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True)
    watchers = [keras.callbacks.TerminateOnNaN(), stopping]
    if checkpoint_path is not None:
        watchers.append(Checkpoint(checkpoint_path, save_best_only=True))
    start = time.perf_counter()
    fitted = model.fit(
        **batches,
        validation_data=tuple(validation),
        epochs=settings.epochs,
        callbacks=[*watchers, *callbacks],
        verbose=2 if verbose else 0,
    )
    seconds = time.perf_counter() - start
    history = {key: [float(v) for v in values] for key, values in fitted.history.items()}
    if not np.all(np.isfinite(history.get("loss", []))) or not has_finite_weights(model):
        raise TrainingDivergedError(
            f"training stopped in epoch {len(history.get('loss', []))}: the loss became NaN or infinite, "
            f"so the model is unusable and was not saved. Try a smaller learning_rate "
            f"(it was {settings.learning_rate:g}) and check that the data are finite numbers in [0, 1]."
        )
    return TrainingRecord(history, seconds, asdict(settings), train_size)
