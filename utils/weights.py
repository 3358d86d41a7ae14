"""The trained weights that ship with the series, and their manifest (``utils/weights/``).

Each model the notebooks use has one ``.npz`` file of weights only (no optimizer state), stored as
float16 where that leaves its test metrics unchanged to three significant digits. ``manifest.json``
records, for every file, its sha256, the recipe that made it, the test metrics it reached and the
library versions. A file is read only after its sha256 matches the manifest, and never with pickle.
``make weights`` (scripts/train_weights.py) retrains them all from scratch and rewrites both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from utils.files import sha256_file

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST_PATH = WEIGHTS_DIR / "manifest.json"
MANIFEST_FORMAT = 1


class ShippedWeightsError(ValueError):
    """Raised when shipped weights exist but cannot go into the model they are asked for."""


def read_manifest(path: Path = MANIFEST_PATH) -> dict:
    """The manifest as a dict; an empty one (no models) when the file is missing."""
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "models": {}}
    manifest = json.loads(path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ShippedWeightsError(f"{path} has format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}.")
    return manifest


def entry(name: str, folder: Path = WEIGHTS_DIR) -> dict | None:
    """The manifest entry of model ``name``, or None when no weights ship for it."""
    return read_manifest(folder / MANIFEST_PATH.name)["models"].get(name)


def _report(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def verified_arrays(record: dict, folder: Path = WEIGHTS_DIR) -> list[np.ndarray] | None:
    """The arrays of a manifest entry as float32, after their file's sha256 matched; None (reported) otherwise."""
    path = folder / record["file"]
    if not path.is_file():
        _report(f"Shipped weights {path.name} are missing; they are not used.")
        return None
    digest = sha256_file(path)
    if digest != record["sha256"]:
        _report(
            f"Shipped weights {path.name} fail their sha256 check ({digest[:12]}..., expected "
            f"{record['sha256'][:12]}...); they are not used."
        )
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return [archive[f"w{index:03d}"].astype(np.float32) for index in range(record["arrays"])]
    except (OSError, ValueError, KeyError) as exc:
        _report(f"Shipped weights {path.name} could not be read ({exc}); they are not used.")
        return None


def load_into(model, name: str, folder: Path = WEIGHTS_DIR) -> dict | None:
    """Put the verified shipped weights of ``name`` into ``model`` and return their manifest entry.

    Returns None (after a one-line report) when the file is missing or fails its check. Raises
    ShippedWeightsError when ``model`` is not the architecture the weights were trained for.
    """
    record = entry(name, folder)
    arrays = None if record is None else verified_arrays(record, folder)
    if arrays is None:
        return None
    expected = [tuple(weight.shape) for weight in model.weights]
    shipped = [array.shape for array in arrays]
    if expected != shipped:
        raise ShippedWeightsError(
            f"The shipped weights {name} fit the series' architecture ({len(shipped)} arrays, "
            f"{sum(int(np.prod(s)) for s in shipped):,} numbers), not this model ({len(expected)} arrays, "
            f"{sum(int(np.prod(s)) for s in expected):,} numbers). An edited model has to be trained: "
            "set AE_FROM_SCRATCH=1, or train it with fit."
        )
    model.set_weights(arrays)
    return record
