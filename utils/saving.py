"""A trained model and the record of its training, saved and loaded as one checked unit under ``outputs/models/``."""

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from utils import config, models
from utils.files import locked, remove_stale_parts, replacing, sha256_file, write_atomically, write_or_report


class SavedModelError(ValueError):
    """A saved model or its record is damaged, or is not the model the caller builds; names the file."""


def shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it (shorter messages)."""
    path, root = Path(path), config.project_root()
    return path.relative_to(root) if path.is_relative_to(root) else path


@dataclass
class TrainingRecord:
    """What a training run leaves behind (history per epoch, seconds, settings) and the checksums of its model."""

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

    @classmethod
    def load(cls, path: Path) -> "TrainingRecord":
        """Read a record written by ``save``; raises SavedModelError naming the file if it is damaged."""
        try:
            record = cls(**json.loads(Path(path).read_text()))
            if not isinstance(record.history, dict) or not isinstance(record.settings, dict):
                raise TypeError("history or settings is not a mapping")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            detail = str(exc).partition("\n")[0] or type(exc).__name__
            raise SavedModelError(f"the training record {shown(path)} is damaged ({detail})") from exc
        return record


def weights_sha256(model: keras.Model) -> str:
    """The sha256 of the model's weight values (dtype, shape and bytes of each, in order)."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        weight = np.ascontiguousarray(weight)
        digest.update(f"{weight.dtype.str}{weight.shape}".encode())
        digest.update(weight.tobytes())
    return digest.hexdigest()


def has_finite_weights(model: keras.Model) -> bool:
    """False when any weight is NaN or infinite, as after a diverged training run."""
    return all(np.all(np.isfinite(weight)) for weight in model.get_weights())


def model_path(name: str) -> Path:
    """Where a trained model lives: ``outputs/models/NAME.keras`` (``outputs/quick/...`` in quick mode)."""
    return config.output_dir("models") / f"{name}.keras"


def record_path(path: Path) -> Path:
    """The training record that belongs to a ``.keras`` file: the same name with ``.json``."""
    return Path(path).with_suffix(".json")


def save(name: str, model: keras.Model, record: TrainingRecord) -> Path | None:
    """Save ``NAME.keras`` and its record ``NAME.json`` as one checked unit; returns the model's path, or None.

    None follows a one-line failure, which leaves nothing behind; NaN or infinite weights raise ValueError.
    """
    path = model_path(name)
    if not has_finite_weights(model):
        raise ValueError(f"model has NaN or infinite weights, so it was not saved to {shown(path)}.")

    def write_the_pair() -> None:
        with locked(path):
            with replacing(path, suffix=".part.keras") as temporary:
                model.save(temporary)
                record.architecture_sha256 = models.architecture_fingerprint(model)
                record.weights_sha256 = weights_sha256(model)
                record.model_file_sha256 = sha256_file(temporary)
            text = json.dumps(asdict(record), indent=2).encode()
            try:
                write_atomically(record_path(path), lambda handle: handle.write(text))
            except OSError:  # the new model without its record is not a unit
                path.unlink(missing_ok=True)
                record_path(path).unlink(missing_ok=True)
                raise

    then = "It stays in memory, for this notebook only. "
    return path if write_or_report(shown(path), write_the_pair, "The model was not saved", then) else None


def _checked_pair(path: Path, build: Callable[[], keras.Model]) -> tuple[keras.Model, TrainingRecord]:
    """The model at ``path`` and its record, or SavedModelError naming what does not agree."""
    json_path = record_path(path)
    if path.is_dir():
        raise SavedModelError(f"{shown(path)} is a folder, not a model file")
    if not path.is_file():
        raise SavedModelError(f"{shown(path)} is missing, though its record {json_path.name} is there")
    if not json_path.is_file():
        raise SavedModelError(f"the training record {shown(json_path)} is missing, so {path.name} cannot be checked")
    record = TrainingRecord.load(json_path)
    if not (record.architecture_sha256 and record.weights_sha256 and record.model_file_sha256):
        raise SavedModelError(
            f"the training record {shown(json_path)} has no checksums (an older version wrote it), "
            f"so {path.name} cannot be checked"
        )
    if sha256_file(path) != record.model_file_sha256:
        raise SavedModelError(
            f"{shown(path)} does not match the sha256 in its record {json_path.name}: it is truncated or "
            "damaged, or a save was interrupted, or another model was saved under this name"
        )
    architecture = models.architecture_fingerprint(build())
    if architecture != record.architecture_sha256:
        raise SavedModelError(f"{shown(path)} holds a different architecture from the model this code builds")
    try:
        model = keras.models.load_model(path)
    except Exception as exc:  # any failure inside Keras means the file cannot be used
        detail = str(exc).partition("\n")[0]
        raise SavedModelError(f"Keras could not read {shown(path)} ({type(exc).__name__}: {detail})") from exc
    if models.architecture_fingerprint(model) != architecture or weights_sha256(model) != record.weights_sha256:
        raise SavedModelError(f"the model in {shown(path)} differs from the one its record {json_path.name} describes")
    return model, record


def load(
    name: str, build: Callable[[], keras.Model], next_step: str = "training it again"
) -> tuple[keras.Model, TrainingRecord] | None:
    """The valid model saved as ``outputs/models/NAME.keras``, with its record; None when there is none.

    A damaged or mismatched pair is one line that names the file and ends with ``next_step``, the caller's plan B.
    """
    path = model_path(name)
    try:
        with locked(path, shared=True):
            for target in (path, record_path(path)):
                remove_stale_parts(target)
            if not path.exists() and not record_path(path).exists():
                return None
            model, record = _checked_pair(path, build)
    except SavedModelError as exc:
        print(f"{exc}: {next_step}.", file=sys.stderr)
        return None
    except OSError as error:
        print(f"{shown(path)} could not be read ({error.strerror or error}): {next_step}.", file=sys.stderr)
        return None
    print(f"Loaded the model saved in {shown(path)}")
    return model, record
