"""From bytes to what a model eats: scaling, flattening, noise, seeded subsets, and the series' split (notebook 01)."""

import numbers
from dataclasses import dataclass

import numpy as np

from utils import checks, config, data
from utils.checks import IMAGE_PIXELS, IMAGE_SHAPE


def scale_images(images: np.ndarray) -> np.ndarray:
    """Turn uint8 pixels 0..255 into float32 in [0, 1], the range a sigmoid output can match."""
    return checks.images(images, dtype="uint8").astype(np.float32) / np.float32(255.0)


def flatten_images(images: np.ndarray) -> np.ndarray:
    """Reshape ``(n, 28, 28)`` images into ``(n, 784)`` vectors for a Dense layer."""
    images = checks.images(images, dtype="any")
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, 28, 28) to be flattened; got shape {images.shape}.")
    return images.reshape(len(images), IMAGE_PIXELS)


def unflatten_images(vectors: np.ndarray) -> np.ndarray:
    """Reshape ``(n, 784)`` vectors back into ``(n, 28, 28)`` images for plotting."""
    vectors = checks.images(vectors, "vectors", dtype="any")
    if vectors.ndim != 2:
        raise ValueError(f"vectors must have shape (n, 784) to be unflattened; got shape {vectors.shape}.")
    return vectors.reshape(len(vectors), *IMAGE_SHAPE)


def add_gaussian_noise(images: np.ndarray, sigma: float, seed: int | list[int] = config.SEED) -> np.ndarray:
    """Add seeded Gaussian noise of standard deviation ``sigma`` and clip back to [0, 1]."""
    images = checks.images(images)
    noise = np.random.default_rng(seed).normal(0.0, checks.number(sigma, "sigma", low=0), size=images.shape)
    return np.clip(images + noise.astype(images.dtype), 0.0, 1.0)


def stratified_subset(images: np.ndarray, labels: np.ndarray, size: int, seed: int = config.SEED):
    """A seeded subset of ``size`` rows with (as near as possible) the same share of every label."""
    checks.labelled(images, labels)
    if isinstance(size, numbers.Integral) and not isinstance(size, bool) and size == len(labels):
        return images, labels
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        raise ValueError(
            f"labels: label {classes[counts.argmin()]} has only one row; a stratified subset needs "
            "two or more of every label."
        )
    what = f" (at least one row per label, and at least one of every label left out) or {len(labels)} for all"
    checks.integer(size, "size", len(classes), len(labels) - len(classes), what)
    from sklearn.model_selection import train_test_split

    chosen, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed)
    chosen = np.sort(chosen)
    return images[chosen], labels[chosen]


def balanced_subset(images: np.ndarray, labels: np.ndarray, per_class: int, seed: int = config.SEED):
    """A seeded subset with exactly ``per_class`` rows of every label (for few-label experiments)."""
    checks.labelled(images, labels)
    checks.integer(per_class, "per_class", 1, len(labels), " rows of every label")
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if per_class > len(rows):
            raise ValueError(f"per_class is {per_class}, but label {label} has only {len(rows)} rows.")
        picks.append(rng.choice(rows, size=per_class, replace=False))
    chosen = np.sort(np.concatenate(picks))
    return images[chosen], labels[chosen]


@dataclass(frozen=True)
class PreparedMnist:
    """MNIST scaled to [0, 1] and flattened to 784, 50,000 / 10,000 / 10,000 (quick mode: 6,000 / 1,000 / 1,000)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def prepare_mnist(quick: bool | None = None) -> PreparedMnist:
    """Load MNIST, keep the last 10,000 training images to validate, scale and flatten (``AE_QUICK=1``: subsets)."""
    quick = config.quick_mode() if quick is None else quick
    (x_all, y_all), (x_test, y_test) = data.load_mnist()
    # Quick mode's 6,000 training images hold over 500 of every digit, notebook 09's largest label budget there.
    splits = [(x_all[:50000], y_all[:50000], 6000), (x_all[50000:], y_all[50000:], 1000), (x_test, y_test, 1000)]
    prepared = []
    for images, labels, quick_size in splits:
        if quick:
            images, labels = stratified_subset(images, labels, quick_size)
        prepared += [flatten_images(scale_images(images)), labels]
    return PreparedMnist(*prepared)


def binarize(images: np.ndarray, seed: int | list[int] = config.SEED) -> np.ndarray:
    """Draw every pixel as 0 or 1, seeded, with probability of 1 equal to its grey level (notebook 11)."""
    images = checks.images(images)
    draws = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
    return (draws < images).astype(images.dtype)
