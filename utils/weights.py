"""The weights that ship with the series (``utils/weights/``), used only when their sha256 matches the manifest."""

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


def load_into(model, name: str, folder: Path = WEIGHTS_DIR) -> dict | None:
    """Put the verified shipped weights of ``name`` into ``model`` and return their manifest entry.

    Returns None (after a one-line report) when the file is missing or fails its check. Raises
    ShippedWeightsError when ``model`` is not the architecture the weights were trained for.
    """
    record = entry(name, folder)
    if record is None:
        return None
    path = folder / record["file"]
    digest = sha256_file(path) if path.is_file() else None
    problem = None
    if digest is None:
        problem = "are missing"
    elif digest != record["sha256"]:
        problem = f"fail their sha256 check ({digest[:12]}..., expected {record['sha256'][:12]}...)"
    else:
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = [archive[f"w{index:03d}"].astype(np.float32) for index in range(record["arrays"])]
        except (OSError, ValueError, KeyError) as exc:
            problem = f"could not be read ({exc})"
    if problem is not None:
        print(f"Shipped weights {path.name} {problem}; they are not used.", file=sys.stderr, flush=True)
        return None
    expected = [tuple(weight.shape) for weight in model.weights]
    shipped = [array.shape for array in arrays]
    if expected != shipped:
        raise ShippedWeightsError(
            f"The shipped weights {name} fit the series' architecture ({_size(shipped)}), not this model "
            f"({_size(expected)}). An edited model has to be trained: set AE_FROM_SCRATCH=1, or train it with fit."
        )
    model.set_weights(arrays)
    return record


def _size(shapes: list[tuple]) -> str:
    return f"{len(shapes)} arrays, {sum(int(np.prod(shape)) for shape in shapes):,} numbers"
