"""Per-image reconstruction quality: MSE, PSNR and SSIM (through ``tf.image``), and their tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from utils import config
from utils.data import IMAGE_PIXELS, IMAGE_SHAPE, write_atomically


def _as_images(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == IMAGE_PIXELS:
        array = array.reshape(-1, *IMAGE_SHAPE)
    if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{name} must be float images in [0, 1] of shape (n, 28, 28) or (n, 784); "
            f"got {array.dtype} with shape {array.shape}."
        )
    return array.astype(np.float32, copy=False)


def _pair(originals: np.ndarray, reconstructions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    originals = _as_images(originals, "originals")
    reconstructions = _as_images(reconstructions, "reconstructions")
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape."
        )
    return originals, reconstructions


def mse_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean squared error per image, averaged over its 784 pixels (pixels in [0, 1])."""
    originals, reconstructions = _pair(originals, reconstructions)
    return np.mean((originals.astype(np.float64) - reconstructions) ** 2, axis=(1, 2))


def psnr_per_image(originals: np.ndarray, reconstructions: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Peak signal-to-noise ratio per image in dB, with ``tf.image.psnr`` and a peak of 1.0."""
    import tensorflow as tf

    originals, reconstructions = _pair(originals, reconstructions)
    parts = [
        tf.image.psnr(
            originals[i : i + batch, ..., None], reconstructions[i : i + batch, ..., None], max_val=1.0
        )
        for i in range(0, len(originals), batch)
    ]
    return np.concatenate([p.numpy() for p in parts]).astype(np.float64)


def ssim_per_image(originals: np.ndarray, reconstructions: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Structural similarity per image with ``tf.image.ssim`` (11x11 Gaussian window, peak 1.0)."""
    import tensorflow as tf

    originals, reconstructions = _pair(originals, reconstructions)
    parts = [
        tf.image.ssim(
            originals[i : i + batch, ..., None], reconstructions[i : i + batch, ..., None], max_val=1.0
        )
        for i in range(0, len(originals), batch)
    ]
    return np.concatenate([p.numpy() for p in parts]).astype(np.float64)


def reconstruction_metrics(originals: np.ndarray, reconstructions: np.ndarray) -> dict[str, np.ndarray]:
    """All three per-image metrics at once: ``{"mse": ..., "psnr": ..., "ssim": ...}``."""
    return {
        "mse": mse_per_image(originals, reconstructions),
        "psnr": psnr_per_image(originals, reconstructions),
        "ssim": ssim_per_image(originals, reconstructions),
    }


def summarize(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """The mean of every per-image metric, as plain floats (ready for JSON)."""
    return {name: float(np.mean(values)) for name, values in per_image.items()}


def per_digit_table(per_image: dict[str, np.ndarray], labels: np.ndarray) -> list[dict[str, float]]:
    """One row per digit with its image count and the mean of every metric."""
    labels = np.asarray(labels)
    rows = []
    for digit in range(10):
        mask = labels == digit
        row = {"digit": digit, "images": int(mask.sum())}
        row.update({name: float(np.mean(values[mask])) for name, values in per_image.items()})
        rows.append(row)
    return rows


def markdown_table(rows: list[dict], formats: dict[str, str] | None = None) -> str:
    """Rows of dicts as a Markdown table; ``formats`` maps a column to a format spec such as ``".4f"``."""
    if not rows:
        raise ValueError("markdown_table needs at least one row.")
    formats = formats or {}
    columns = list(rows[0])

    def cell(column: str, value) -> str:
        if isinstance(value, float) and column in formats:
            return format(value, formats[column])
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def save_metrics(name: str, values: dict) -> Path:
    """Write ``values`` as ``outputs/metrics/NAME.json`` atomically and return the path."""
    path = config.output_dir("metrics") / f"{name}.json"
    text = json.dumps(values, indent=2, sort_keys=False).encode()
    write_atomically(path, lambda handle: handle.write(text + b"\n"))
    return path


def load_metrics(name: str) -> dict:
    """Read ``outputs/metrics/NAME.json`` written by ``save_metrics``."""
    return json.loads((config.output_dir("metrics") / f"{name}.json").read_text())
