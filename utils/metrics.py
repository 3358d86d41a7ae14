"""How good a reconstruction is: MSE, PSNR and SSIM per image (scikit-image, any backend), and their tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from utils import checks, config
from utils.checks import IMAGE_SHAPE
from utils.files import save_output


def _as_grids(images: np.ndarray, name: str) -> np.ndarray:
    return checks.images(images, name).reshape(-1, *IMAGE_SHAPE).astype(np.float32, copy=False)


def _pair(originals: np.ndarray, reconstructions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    originals, reconstructions = (_as_grids(originals, "originals"), _as_grids(reconstructions, "reconstructions"))
    if originals.shape != reconstructions.shape:
        raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape.")
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
                original, rebuilt, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
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


def save_metrics(name: str, values: dict) -> Path | None:
    """Write ``values`` as ``outputs/metrics/NAME.json`` atomically and return the path (None if it was not saved).

    Skipped when the outputs folder cannot be written; a failed write is one line (``files.save_output``).
    """
    path = config.output_dir("metrics") / f"{name}.json"
    text = json.dumps(values, indent=2, sort_keys=False).encode()
    return save_output(path, lambda handle: handle.write(text + b"\n"), "The metrics")
