"""Training settings, the training loop around ``fit``, and loading the model notebook 03 saved."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from utils import config, data, models


@dataclass(frozen=True)
class PreparedMnist:
    """MNIST scaled to [0, 1] and flattened to 784, split 50,000 / 10,000 / 10,000 (subsets in quick mode)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def prepare_mnist(quick: bool | None = None) -> PreparedMnist:
    """Load MNIST, scale and flatten it, and hold out the classic last 10,000 training images for validation.

    In quick mode (``AE_QUICK=1``) it keeps stratified subsets: 10,000 / 1,000 / 1,000.
    """
    quick = config.quick_mode() if quick is None else quick
    (x_all, y_all), (x_test, y_test) = data.load_mnist()
    x_train, y_train = x_all[:50000], y_all[:50000]
    x_val, y_val = x_all[50000:], y_all[50000:]
    if quick:
        x_train, y_train = data.stratified_subset(x_train, y_train, 10000)
        x_val, y_val = data.stratified_subset(x_val, y_val, 1000)
        x_test, y_test = data.stratified_subset(x_test, y_test, 1000)

    def prepare(images: np.ndarray) -> np.ndarray:
        return data.flatten_images(data.scale_images(images))

    return PreparedMnist(prepare(x_train), y_train, prepare(x_val), y_val, prepare(x_test), y_test)


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
        learning_rate = keras.optimizers.schedules.CosineDecay(
            settings.learning_rate, total_steps, alpha=0.02
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=settings.loss,
        metrics=[keras.metrics.MeanSquaredError(name="mse"), keras.metrics.BinaryCrossentropy(name="bce")],
        jit_compile=settings.jit_compile,
        steps_per_execution=settings.steps_per_execution,
    )
    return model


class EpochProgress(keras.callbacks.Callback):
    """One compact line per epoch: a bar, the losses and the elapsed time (readable in saved notebooks)."""

    def __init__(self, epochs: int, width: int = 20, stream=None):
        super().__init__()
        self.epochs, self.width = epochs, width
        self.stream = stream or sys.stdout
        self.start = 0.0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        done = round(self.width * (epoch + 1) / self.epochs)
        bar = "#" * done + "-" * (self.width - done)
        numbers = "  ".join(f"{key} {value:.5f}" for key, value in logs.items() if key != "learning_rate")
        elapsed = time.perf_counter() - self.start
        print(
            f"epoch {epoch + 1:>3}/{self.epochs} [{bar}] {numbers}  {elapsed:5.1f}s",
            file=self.stream,
            flush=True,
        )


@dataclass
class TrainingRecord:
    """What a training run leaves behind: the per-epoch history, wall-clock seconds and the settings."""

    history: dict[str, list[float]]
    seconds: float
    settings: dict
    train_size: int
    extra: dict = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    def save(self, path: Path) -> None:
        """Write the record as JSON, atomically."""
        text = json.dumps(asdict(self), indent=2).encode()
        data.write_atomically(Path(path), lambda handle: handle.write(text))

    @classmethod
    def load(cls, path: Path) -> TrainingRecord:
        return cls(**json.loads(Path(path).read_text()))


class NoisyImages(keras.utils.PyDataset):
    """Batches of ``(noisy, clean)`` images with fresh, seeded Gaussian noise every epoch (notebook 07).

    New noise each epoch means the model never sees the same corrupted image twice, so it cannot
    memorise the noise. The order of the images is reshuffled every epoch, also seeded.
    """

    def __init__(self, clean: np.ndarray, sigma: float, batch_size: int, seed: int = config.SEED, **kwargs):
        super().__init__(**kwargs)
        if clean.ndim != 2 or len(clean) == 0:
            raise ValueError(f"clean must be a non-empty (n, pixels) array, got shape {clean.shape}.")
        self.clean, self.sigma, self.batch_size, self.seed = clean, sigma, batch_size, seed
        self.epoch = 0
        self.order = np.random.default_rng([seed, 0]).permutation(len(clean))

    @property
    def num_images(self) -> int:
        return len(self.clean)

    def __len__(self) -> int:
        return int(np.ceil(len(self.clean) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        clean = self.clean[self.order[index * self.batch_size : (index + 1) * self.batch_size]]
        return data.add_gaussian_noise(clean, self.sigma, seed=[self.seed, self.epoch, index]), clean

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.clean))


def train_autoencoder(
    model: keras.Model,
    inputs: np.ndarray | keras.utils.PyDataset,
    targets: np.ndarray | None,
    validation: tuple[np.ndarray, np.ndarray],
    settings: TrainingSettings,
    checkpoint_path: Path | None = None,
    verbose: bool = True,
) -> TrainingRecord:
    """Compile and ``fit`` with early stopping (best weights restored) and an optional best-epoch checkpoint.

    ``inputs`` is an array with ``targets`` beside it, or a ``PyDataset`` of (input, target) batches.
    """
    if isinstance(inputs, keras.utils.PyDataset):
        if targets is not None:
            raise ValueError("a PyDataset yields its own targets: pass targets=None.")
        train_size, batches = inputs.num_images, {"x": inputs}
    else:
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(
                f"inputs and targets differ in length: {inputs.shape[0]} and {targets.shape[0]}."
            )
        train_size = len(inputs)
        batches = {"x": inputs, "y": targets, "batch_size": settings.batch_size, "shuffle": True}
    compile_autoencoder(model, settings, train_size=train_size)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=settings.patience, restore_best_weights=True
        )
    ]
    if checkpoint_path is not None:
        Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(str(checkpoint_path), save_best_only=True))
    if verbose:
        callbacks.append(EpochProgress(settings.epochs))
    start = time.perf_counter()
    history = model.fit(
        **batches,
        validation_data=validation,
        epochs=settings.epochs,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    clean_history = {key: [float(v) for v in values] for key, values in history.history.items()}
    return TrainingRecord(clean_history, seconds, asdict(settings), train_size)


def model_path(name: str) -> Path:
    """Where a trained model lives: ``outputs/models/NAME.keras`` (``outputs/quick/...`` in quick mode)."""
    return config.output_dir("models") / f"{name}.keras"


def save_model(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` file atomically, so that an interrupted save never leaves half a model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.part.keras")
    try:
        model.save(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def dense_model_name(latent_dim: int = models.DEFAULT_LATENT_DIM) -> str:
    return f"dense_autoencoder_{latent_dim}d"


def load_or_train(
    name: str,
    build: Callable[[], keras.Model],
    inputs: np.ndarray | keras.utils.PyDataset,
    targets: np.ndarray | None,
    validation: tuple[np.ndarray, np.ndarray],
    settings: TrainingSettings | None = None,
    verbose: bool = True,
    retrain: bool = False,
) -> tuple[keras.Model, TrainingRecord]:
    """Load ``outputs/models/NAME.keras`` and its record if both exist; else seed, build, train and save.

    ``retrain=True`` always trains. A damaged file is reported and retrained, never trusted.
    """
    path = model_path(name)
    record_path = path.with_suffix(".json")
    if not retrain and path.is_file() and record_path.is_file():
        try:
            model = keras.models.load_model(path)
            shown = (
                path.relative_to(config.project_root())
                if path.is_relative_to(config.project_root())
                else path
            )
            print(f"Loaded the trained model from {shown}")
            return model, TrainingRecord.load(record_path)
        except Exception as exc:  # reported, then retrained
            print(f"Could not load {path} ({type(exc).__name__}: {exc}); training it again.", file=sys.stderr)
    elif not retrain:
        print(f"No saved {path.name} yet: training it now.")
    keras.utils.set_random_seed(config.SEED)
    model = build()
    record = train_autoencoder(
        model,
        inputs,
        targets,
        validation,
        settings or default_settings(),
        checkpoint_path=path.with_name(path.stem + ".best.keras"),
        verbose=verbose,
    )
    save_model(model, path)
    record.save(record_path)
    return model, record


def load_or_train_dense_autoencoder(
    prepared: PreparedMnist | None = None,
    latent_dim: int = models.DEFAULT_LATENT_DIM,
    retrain: bool = False,
    verbose: bool = True,
) -> tuple[keras.Sequential, TrainingRecord]:
    """The model notebook 03 saved, if it exists; otherwise train it now (with a per-epoch progress bar)."""
    prepared = prepared or prepare_mnist()
    return load_or_train(
        dense_model_name(latent_dim),
        lambda: models.build_dense_autoencoder(latent_dim)[2],
        prepared.x_train,
        prepared.x_train,
        (prepared.x_val, prepared.x_val),
        verbose=verbose,
        retrain=retrain,
    )


def train_dense_autoencoder(
    prepared: PreparedMnist, latent_dim: int = models.DEFAULT_LATENT_DIM, verbose: bool = True
) -> tuple[keras.Sequential, TrainingRecord]:
    """Seed, build and train the series' dense autoencoder, then save it and its record (notebook 03)."""
    return load_or_train_dense_autoencoder(prepared, latent_dim, retrain=True, verbose=verbose)


# Notebook 09's convolutional model: epochs chosen to fit 10 minutes on a 2-core CPU. XLA is off because
# XLA-compiled convolutions ran slower than TensorFlow's oneDNN kernels on that CPU (see `make bench`).
CONV_EPOCHS = 25


def conv_settings(quick: bool | None = None) -> TrainingSettings:
    """The series' settings for the convolutional autoencoder (2 epochs in quick mode)."""
    quick = config.quick_mode() if quick is None else quick
    return default_settings(quick=quick, epochs=2 if quick else CONV_EPOCHS, jit_compile=False)


def load_or_train_conv_autoencoder(
    prepared: PreparedMnist | None = None, latent_dim: int = models.DEFAULT_LATENT_DIM
) -> tuple[keras.Sequential, TrainingRecord]:
    """Notebook 09's convolutional autoencoder, loaded if saved, else trained (up to about 10 minutes)."""
    prepared = prepared or prepare_mnist()
    return load_or_train(
        f"conv_autoencoder_{latent_dim}d",
        lambda: models.build_conv_autoencoder(latent_dim)[2],
        prepared.x_train,
        prepared.x_train,
        (prepared.x_val, prepared.x_val),
        settings=conv_settings(),
    )


# Notebook 06's convolutional model trains with these changes to the defaults (see `make bench`).
CONV_SETTINGS = {"epochs": CONV_EPOCHS, "jit_compile": False}


def load_saved(name: str, build: Callable[[], keras.Model]) -> tuple[keras.Model, TrainingRecord] | None:
    """The model a notebook saved as ``outputs/models/NAME.keras`` with its record, or None if there is none."""
    path = model_path(name)
    record_path = path.with_suffix(".json")
    if not (path.is_file() and record_path.is_file()):
        return None
    try:
        model = keras.models.load_model(path)
        record = TrainingRecord.load(record_path)
    except Exception as exc:  # reported, then the caller trains or loads another source
        print(f"Could not load {path} ({type(exc).__name__}: {exc}); not using it.", file=sys.stderr)
        return None
    shown = path.relative_to(config.project_root()) if path.is_relative_to(config.project_root()) else path
    print(f"Loaded the model saved in {shown}")
    return model, record


def save_trained(name: str, model: keras.Model, record: TrainingRecord) -> Path:
    """Save a trained model and its record under ``outputs/models/`` and return the model's path."""
    path = model_path(name)
    save_model(model, path)
    record.save(path.with_suffix(".json"))
    return path
