"""Per-image reconstruction quality: MSE, PSNR and SSIM (scikit-image, any Keras backend), and their tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from utils import config
from utils.data import IMAGE_PIXELS, IMAGE_SHAPE, write_atomically

# Pixels outside [0, 1] by more than this are refused (float32 rounding stays far below it).
RANGE_TOLERANCE = 1e-5


def check_images(array: np.ndarray, name: str) -> np.ndarray:
    """Check that ``array`` holds float images in [0, 1], flat or 28x28, and return them as (n, 28, 28).

    A ValueError names ``name`` and says what was expected: the shape, finite values, the range.
    """
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == IMAGE_PIXELS:
        array = array.reshape(-1, *IMAGE_SHAPE)
    if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{name} must be float images in [0, 1] of shape (n, 28, 28) or (n, 784); "
            f"got {array.dtype} with shape {array.shape}."
        )
    if len(array) == 0:
        raise ValueError(f"{name} is empty: pass at least one image.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity: every pixel must be a number in [0, 1].")
    low, high = float(array.min()), float(array.max())
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        hint = " They look like bytes 0..255: divide by 255 first (data.scale_images)." if high > 1.5 else ""
        raise ValueError(f"{name} must have pixels in [0, 1]; got values from {low:g} to {high:g}.{hint}")
    return array.astype(np.float32, copy=False)


def _pair(originals: np.ndarray, reconstructions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    originals = check_images(originals, "originals")
    reconstructions = check_images(reconstructions, "reconstructions")
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape."
        )
    return originals, reconstructions


def mse_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean squared error per image, averaged over its 784 pixels (pixels in [0, 1])."""
    originals, reconstructions = _pair(originals, reconstructions)
    return np.mean((originals.astype(np.float64) - reconstructions) ** 2, axis=(1, 2))


def psnr_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio per image in dB, ``10 log10(1 / MSE)`` with a peak of 1.0.

    It equals ``skimage.metrics.peak_signal_noise_ratio(..., data_range=1)`` image by image (a test checks),
    computed for the whole batch at once. A perfect reconstruction gives infinity.
    """
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1.0 / mse_per_image(originals, reconstructions))


def ssim_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Structural similarity per image with ``skimage.metrics.structural_similarity``.

    Settings of Wang et al. (2004), as in ``tf.image.ssim``: an 11x11 Gaussian window with sigma 1.5,
    population covariances and a data range of 1.0.
    """
    from skimage.metrics import structural_similarity

    originals, reconstructions = _pair(originals, reconstructions)
    return np.array(
        [
            structural_similarity(
                original,
                rebuilt,
                data_range=1.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for original, rebuilt in zip(originals, reconstructions, strict=True)
        ],
        dtype=np.float64,
    )


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
