"""Training settings, the training loop around ``fit``, and loading the model notebook 03 saved."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from utils import config, data, metrics, models


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
    """What a training run leaves behind: the per-epoch history, wall-clock seconds and the settings.

    Saved beside its model, it also holds the model's architecture fingerprint and the sha256 of its
    weights and of its ``.keras`` file, so that a model and its record are checked as one unit on load.
    """

    history: dict[str, list[float]]
    seconds: float
    settings: dict
    train_size: int
    extra: dict = field(default_factory=dict)
    architecture_sha256: str = ""
    weights_sha256: str = ""
    model_file_sha256: str = ""

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    def save(self, path: Path) -> None:
        """Write the record as JSON, atomically."""
        text = json.dumps(asdict(self), indent=2).encode()
        data.write_atomically(Path(path), lambda handle: handle.write(text))

    @classmethod
    def load(cls, path: Path) -> TrainingRecord:
        """Read a record written by ``save``; raises SavedModelError naming the file if it is damaged."""
        try:
            values = json.loads(Path(path).read_text())
            record = cls(**values)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SavedModelError(f"the training record {_shown(path)} is damaged ({detail})") from exc
        if not isinstance(record.history, dict) or not isinstance(record.settings, dict):
            raise SavedModelError(
                f"the training record {_shown(path)} is damaged (history or settings is not a mapping)"
            )
        return record


class SavedModelError(ValueError):
    """A saved model or its record is damaged, or is not the model the caller builds; names the file."""


class TrainingDivergedError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite; the model is unusable and was not saved."""


def weights_sha256(model: keras.Model) -> str:
    """The sha256 of the model's weight values (dtype, shape and bytes of each, in order)."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        weight = np.ascontiguousarray(weight)
        digest.update(f"{weight.dtype.str}{weight.shape}".encode())
        digest.update(weight.tobytes())
    return digest.hexdigest()


def _has_finite_weights(model: keras.Model) -> bool:
    return all(np.all(np.isfinite(weight)) for weight in model.get_weights())


class FiniteModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras's best-epoch checkpoint, except that it never writes a model with NaN or infinite weights.

    A diverging run can still report a finite (huge) validation loss in its first epoch, which the plain
    callback would save as the best so far.
    """

    def __init__(self, filepath: str, **kwargs):
        # Starting from infinity, a NaN validation loss never counts as the best one either.
        super().__init__(filepath, initial_value_threshold=float("inf"), **kwargs)

    def on_epoch_end(self, epoch, logs=None):
        if _has_finite_weights(self.model):
            super().on_epoch_end(epoch, logs)


class NoisyImages(keras.utils.PyDataset):
    """Batches of ``(noisy, clean)`` images with fresh, seeded Gaussian noise every epoch (notebook 07).

    New noise each epoch means the model never sees the same corrupted image twice, so it cannot
    memorise the noise. The order of the images is reshuffled every epoch, also seeded.
    """

    def __init__(self, clean: np.ndarray, sigma: float, batch_size: int, seed: int = config.SEED, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(clean, np.ndarray) or clean.ndim != 2:
            raise ValueError(f"clean must be a (n, 784) array of images, got {np.shape(clean)}.")
        metrics.check_images(clean, "clean")
        data.check_sigma(sigma)
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


def _check_images(images: object, name: str, shape: tuple | None) -> None:
    """Refuse training data that is not float images in [0, 1] of the model's shape, naming ``name``."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of images, got {type(images).__name__}.")
    if shape is not None and images.shape[1:] != shape:
        hint = " Flatten 28x28 images with data.flatten_images first." if images.shape[1:] == (28, 28) else ""
        raise ValueError(
            f"{name} must have shape (n, {', '.join(map(str, shape))}) to fit the model; "
            f"got {images.shape}.{hint}"
        )
    metrics.check_images(images, name)


def _check_training_data(
    model: keras.Model,
    inputs: np.ndarray | keras.utils.PyDataset,
    targets: np.ndarray | None,
    validation: tuple,
) -> None:
    """Clear errors for inputs, targets and validation data the model cannot learn from sensibly."""
    try:
        input_shape, output_shape = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    except (AttributeError, ValueError):  # a model that is not built yet: its shapes are unknown
        input_shape = output_shape = None
    if isinstance(inputs, keras.utils.PyDataset):
        if targets is not None:
            raise ValueError("a PyDataset yields its own targets: pass targets=None.")
    elif targets is None:
        raise TypeError(
            "targets is None: pass the images the model should output (for an autoencoder, the inputs "
            "themselves), or pass a keras.utils.PyDataset of (input, target) batches as inputs."
        )
    else:
        _check_images(inputs, "inputs", input_shape)
        _check_images(targets, "targets", output_shape)
        if len(inputs) != len(targets):
            raise ValueError(f"inputs and targets differ in length: {len(inputs)} and {len(targets)}.")
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError("validation must be a pair (validation inputs, validation targets) of NumPy arrays.")
    _check_images(validation[0], "validation inputs", input_shape)
    _check_images(validation[1], "validation targets", output_shape)
    if len(validation[0]) != len(validation[1]):
        raise ValueError(
            f"validation inputs and targets differ in length: {len(validation[0])} and {len(validation[1])}."
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
    ``callbacks`` run after the built-in ones.
    Images must be floats in [0, 1]; a NaN or infinite loss stops training with TrainingDivergedError.
    """
    _check_training_data(model, inputs, targets, validation)
    if isinstance(inputs, keras.utils.PyDataset):
        train_size, batches = inputs.num_images, {"x": inputs}
    else:
        train_size = len(inputs)
        batches = {"x": inputs, "y": targets, "batch_size": settings.batch_size, "shuffle": True}
    compile_autoencoder(model, settings, train_size=train_size)
    every_callback: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=settings.patience, restore_best_weights=True
        ),
    ]
    if checkpoint_path is not None:
        Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        every_callback.append(FiniteModelCheckpoint(str(checkpoint_path), save_best_only=True))
    if verbose:
        every_callback.append(EpochProgress(settings.epochs))
    start = time.perf_counter()
    history = model.fit(
        **batches,
        validation_data=validation,
        epochs=settings.epochs,
        callbacks=[*every_callback, *callbacks],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    clean_history = {key: [float(v) for v in values] for key, values in history.history.items()}
    if not np.all(np.isfinite(clean_history.get("loss", []))) or not _has_finite_weights(model):
        raise TrainingDivergedError(
            f"training stopped in epoch {len(clean_history.get('loss', []))}: "
            "the loss became NaN or infinite, "
            f"so the model is unusable and was not saved. Try a smaller learning_rate "
            f"(it was {settings.learning_rate:g}) and check that the data are finite numbers in [0, 1]."
        )
    return TrainingRecord(clean_history, seconds, asdict(settings), train_size)


def model_path(name: str) -> Path:
    """Where a trained model lives: ``outputs/models/NAME.keras`` (``outputs/quick/...`` in quick mode)."""
    return config.output_dir("models") / f"{name}.keras"


def record_path(path: Path) -> Path:
    """The training record that belongs to a ``.keras`` file: the same name with ``.json``."""
    return Path(path).with_suffix(".json")


def _shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it (shorter messages)."""
    path, root = Path(path), config.project_root()
    return path.relative_to(root) if path.is_relative_to(root) else path


def save_model(model: keras.Model, path: Path, record: TrainingRecord) -> TrainingRecord:
    """Save ``NAME.keras`` and its record ``NAME.json`` as one unit, each atomically; returns the record.

    The record gets the model's architecture fingerprint and the sha256 of its weights and of the file, so
    a crash between the two renames, or another model saved under the same name, is caught on load.
    A model with NaN or infinite weights is refused (ValueError) and nothing is written.
    """
    path = Path(path)
    if not _has_finite_weights(model):
        raise ValueError(f"model has NaN or infinite weights, so it was not saved to {path}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    for target in (path, record_path(path)):
        data.remove_stale_parts(target)
    handle, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=data.part_file_prefix(path), suffix=".part.keras"
    )
    os.close(handle)
    try:
        model.save(temp_name)
        with open(temp_name, "rb+") as saved:
            os.fsync(saved.fileno())
        record.architecture_sha256 = models.architecture_fingerprint(model)
        record.weights_sha256 = weights_sha256(model)
        record.model_file_sha256 = data.sha256_file(temp_name)
        os.chmod(temp_name, 0o644)  # mkstemp made it private to us; a model file is readable like any other
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)
    record.save(record_path(path))
    return record


def load_saved_model(path: Path, build: Callable[[], keras.Model]) -> tuple[keras.Model, TrainingRecord]:
    """The model saved at ``path`` with its record, once both checksums and ``build()``'s architecture agree.

    Raises FileNotFoundError when neither file exists, SavedModelError (naming the damaged file) otherwise.
    """
    path = Path(path)
    json_path = record_path(path)
    if not path.exists() and not json_path.exists():
        raise FileNotFoundError(f"no saved {path.name} yet")
    if path.is_dir():
        raise SavedModelError(f"{_shown(path)} is a folder, not a model file")
    if not path.is_file():
        raise SavedModelError(f"{_shown(path)} is missing, though its record {json_path.name} is there")
    if not json_path.is_file():
        raise SavedModelError(
            f"the training record {_shown(json_path)} is missing, so {path.name} cannot be checked"
        )
    record = TrainingRecord.load(json_path)
    if not (record.architecture_sha256 and record.weights_sha256 and record.model_file_sha256):
        raise SavedModelError(
            f"the training record {_shown(json_path)} has no checksums (an older version wrote it), "
            f"so {path.name} cannot be checked"
        )
    if data.sha256_file(path) != record.model_file_sha256:
        raise SavedModelError(
            f"{_shown(path)} does not match the sha256 in its record {json_path.name}: it is truncated or "
            "damaged, or a save was interrupted, or another model was saved under this name"
        )
    if models.architecture_fingerprint(build()) != record.architecture_sha256:
        raise SavedModelError(
            f"{_shown(path)} holds a different architecture from the model this code builds under that name"
        )
    try:
        model = keras.models.load_model(path)
    except Exception as exc:  # any failure inside Keras means the file cannot be used
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise SavedModelError(
            f"Keras could not read {_shown(path)} ({type(exc).__name__}: {detail})"
        ) from exc
    if (
        models.architecture_fingerprint(model) != record.architecture_sha256
        or weights_sha256(model) != record.weights_sha256
    ):
        raise SavedModelError(
            f"the model in {_shown(path)} differs from the one its record {json_path.name} describes"
        )
    return model, record


def load_saved(
    name: str, build: Callable[[], keras.Model], next_step: str = "training it again"
) -> tuple[keras.Model, TrainingRecord] | None:
    """The valid model a notebook saved as ``outputs/models/NAME.keras``, with its record; None otherwise.

    A damaged or mismatched pair is reported in one line that names the file and ends with ``next_step``,
    what the caller does instead; leftovers of an interrupted save are removed.
    """
    path = model_path(name)
    for target in (path, record_path(path)):
        data.remove_stale_parts(target)
    try:
        model, record = load_saved_model(path, build)
    except FileNotFoundError:
        return None
    except SavedModelError as exc:
        print(f"{exc}: {next_step}.", file=sys.stderr)
        return None
    print(f"Loaded the model saved in {_shown(path)}")
    return model, record


def save_trained(name: str, model: keras.Model, record: TrainingRecord) -> Path:
    """Save a trained model and its record as one unit under ``outputs/models/``; returns the model's path."""
    path = model_path(name)
    save_model(model, path, record)
    return path


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
    """Load ``outputs/models/NAME.keras`` and its record if both are valid; else seed, build, train and save.

    ``retrain=True`` always trains. The series' own models go through ``recipes.trained_model``, which
    also tries the shipped weights; this is the same path for any other model.
    """
    if not retrain:
        saved = load_saved(name, build)
        if saved is not None:
            return saved
        print(f"Training {name} now.")
    keras.utils.set_random_seed(config.SEED)
    model = build()
    path = model_path(name)
    record = train_autoencoder(
        model,
        inputs,
        targets,
        validation,
        settings or default_settings(),
        checkpoint_path=path.with_name(path.stem + ".best.keras"),
        verbose=verbose,
    )
    return model, save_model(model, path, record)


# Notebook 06's convolutional model trains with these changes to the defaults: 25 epochs fit 10 minutes on a
# 2-core CPU, and XLA is off because XLA-compiled convolutions ran slower there than oneDNN's (`make bench`).
CONV_SETTINGS = {"epochs": 25, "jit_compile": False}
