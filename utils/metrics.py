"""How good a reconstruction is: MSE, PSNR and SSIM per image (scikit-image, any backend), and their tables."""

import json
from pathlib import Path

import numpy as np

from utils import checks, config
from utils.checks import IMAGE_SHAPE
from utils.files import save_output


def _pair(originals: np.ndarray, reconstructions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    originals = checks.images(originals, "originals").reshape(-1, *IMAGE_SHAPE).astype(np.float32, copy=False)
    reconstructions = (
        checks.images(reconstructions, "reconstructions").reshape(-1, *IMAGE_SHAPE).astype(np.float32, copy=False)
    )
    if originals.shape != reconstructions.shape:
        raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape.")
    return originals, reconstructions


def mse_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean squared error per image, averaged over its 784 pixels (pixels in [0, 1])."""
    originals, reconstructions = _pair(originals, reconstructions)
    return np.mean((originals.astype(np.float64) - reconstructions) ** 2, axis=(1, 2))


def psnr_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """PSNR per image in dB, ``10 log10(1 / MSE)``, as scikit-image's with ``data_range=1`` (inf if perfect)."""
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1.0 / mse_per_image(originals, reconstructions))


def ssim_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Structural similarity per image (scikit-image) with the settings of Wang et al. (2004), as in ``tf.image.ssim``:
    an 11x11 Gaussian window with sigma 1.5, population covariances and a data range of 1.0."""
    from skimage.metrics import structural_similarity

    settings = {"data_range": 1.0, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    originals, reconstructions = _pair(originals, reconstructions)
    # One call on the images stacked into one tall image, then each image's mean over its inner 18x18 pixels, as
    # scikit-image takes it: the window reaches 5 pixels, so those values come from that image's own pixels only.
    _, ssim_map = structural_similarity(
        originals.reshape(-1, 28), reconstructions.reshape(-1, 28), full=True, **settings
    )
    return ssim_map.reshape(originals.shape)[:, 5:-5, 5:-5].mean(axis=(1, 2), dtype=np.float64)


def reconstruction_metrics(originals: np.ndarray, reconstructions: np.ndarray) -> dict[str, np.ndarray]:
    """All three per-image metrics at once: ``{"mse": ..., "psnr": ..., "ssim": ...}``."""
    functions = {"mse": mse_per_image, "psnr": psnr_per_image, "ssim": ssim_per_image}
    return {name: metric(originals, reconstructions) for name, metric in functions.items()}


def summarize(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """The mean of every per-image metric, as plain floats (ready for JSON)."""
    return {name: float(np.mean(values)) for name, values in per_image.items()}


def per_digit_table(per_image: dict[str, np.ndarray], labels: np.ndarray) -> list[dict[str, float]]:
    """One row per digit with its image count and the mean of every metric."""
    masks = [np.asarray(labels) == digit for digit in range(10)]
    return [
        {"digit": digit, "images": int(mask.sum())} | summarize({k: v[mask] for k, v in per_image.items()})
        for digit, mask in enumerate(masks)
    ]


def markdown_table(rows: list[dict], formats: dict[str, str] | None = None) -> str:
    """Rows of dicts as a Markdown table; ``formats`` maps a column to a format spec such as ``".4f"``."""
    if not rows:
        raise ValueError("markdown_table needs at least one row.")
    formats, columns = formats or {}, list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [
            format(row[c], formats[c]) if isinstance(row[c], float) and c in formats else str(row[c]) for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_metrics(name: str, values: dict) -> Path | None:
    """Write ``values`` as ``outputs/metrics/NAME.json`` atomically and return the path (None if it was not saved):
    skipped when the outputs folder cannot be written; a failed write is one line (``files.save_output``)."""
    text = json.dumps(values, indent=2).encode() + b"\n"
    return save_output(config.output_dir("metrics") / f"{name}.json", lambda handle: handle.write(text), "The metrics")
