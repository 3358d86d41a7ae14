"""From bytes to model inputs on the real MNIST: scaling, flattening, noise, seeded subsets and the series' split."""

from __future__ import annotations

import numpy as np
import pytest

from utils import preprocessing


def test_scale_images(mnist):
    (x_train, _), _ = mnist
    scaled = preprocessing.scale_images(x_train[:100])
    assert scaled.dtype == np.float32 and scaled.shape == (100, 28, 28)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert np.allclose(scaled * 255, x_train[:100])
    with pytest.raises(ValueError, match="must be uint8 images"):
        preprocessing.scale_images(scaled)
    with pytest.raises(ValueError, match="shape"):
        preprocessing.scale_images(x_train[:5, :20])
    with pytest.raises(ValueError, match="images must be uint8 images .* got int64"):
        preprocessing.scale_images(x_train[:5].tolist())  # a list of Python ints is not bytes
    with pytest.raises(TypeError, match="NumPy array"):
        preprocessing.scale_images({"digits": x_train[:5]})


def test_flatten_round_trip(mnist):
    (x_train, _), _ = mnist
    images = preprocessing.scale_images(x_train[:50])
    vectors = preprocessing.flatten_images(images)
    assert vectors.shape == (50, 784)
    assert np.array_equal(vectors[7], images[7].ravel())
    assert np.array_equal(preprocessing.unflatten_images(vectors), images)
    assert preprocessing.flatten_images(x_train[:3]).dtype == np.uint8, "bytes can be flattened too"
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        preprocessing.flatten_images(vectors)
    with pytest.raises(ValueError, match=r"\(n, 784\)"):
        preprocessing.unflatten_images(images)


def test_gaussian_noise(mnist):
    (_, _), (x_test, _) = mnist
    clean = preprocessing.scale_images(x_test[:500])
    noisy = preprocessing.add_gaussian_noise(clean, sigma=0.5, seed=1)
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert np.array_equal(noisy, preprocessing.add_gaussian_noise(clean, sigma=0.5, seed=1))
    assert not np.array_equal(noisy, preprocessing.add_gaussian_noise(clean, sigma=0.5, seed=2))
    assert 0.1 < float(np.mean((noisy - clean) ** 2)) < 0.25
    assert np.array_equal(preprocessing.add_gaussian_noise(clean, sigma=0), clean), "sigma 0 adds nothing"


def test_stratified_subset_keeps_class_shares(mnist):
    (x_train, y_train), _ = mnist
    images, labels = preprocessing.stratified_subset(x_train, y_train, 6000, seed=0)
    assert images.shape == (6000, 28, 28) and labels.shape == (6000,)
    expected = np.bincount(y_train) / len(y_train) * 6000
    assert np.all(np.abs(np.bincount(labels) - expected) <= 1)
    again, _ = preprocessing.stratified_subset(x_train, y_train, 6000, seed=0)
    assert np.array_equal(images, again)
    full, _ = preprocessing.stratified_subset(x_train, y_train, len(y_train))
    assert full is x_train


def test_balanced_subset(mnist):
    (x_train, y_train), _ = mnist
    images, labels = preprocessing.balanced_subset(x_train, y_train, 10, seed=3)
    assert np.bincount(labels).tolist() == [10] * 10
    assert len(images) == 100
    again, _ = preprocessing.balanced_subset(x_train, y_train, 10, seed=3)
    assert np.array_equal(images, again)


@pytest.mark.parametrize(
    ("call", "error", "expected"),
    [
        (lambda x, y, s: preprocessing.stratified_subset(x, y, 0), ValueError, "size must be from 10"),
        (lambda x, y, s: preprocessing.stratified_subset(x, y, 5), ValueError, r"size must be from 10 .* got 5"),
        (lambda x, y, s: preprocessing.stratified_subset(x, y, 100.5), TypeError, "size must be an integer"),
        (lambda x, y, s: preprocessing.stratified_subset(x, y, "600"), TypeError, "size must be an integer, got str"),
        (
            lambda x, y, s: preprocessing.stratified_subset(x, y, len(y) - 3),
            ValueError,
            "at least one of every label left out",
        ),
        (lambda x, y, s: preprocessing.stratified_subset(x[:10], y, 5), ValueError, "same length"),
        (lambda x, y, s: preprocessing.balanced_subset(x[:50], y[:50], 40), ValueError, "but label .* has only"),
        (lambda x, y, s: preprocessing.balanced_subset(x, y, 0), ValueError, "per_class must be from 1"),
        (lambda x, y, s: preprocessing.balanced_subset(x, y, 2.5), TypeError, "per_class must be an integer"),
        (
            lambda x, y, s: preprocessing.add_gaussian_noise(s, sigma=np.inf),
            ValueError,
            "sigma must be a finite number >= 0, got inf",
        ),
        (
            lambda x, y, s: preprocessing.add_gaussian_noise(s, sigma=np.nan),
            ValueError,
            "sigma must be a finite number >= 0, got nan",
        ),
        (
            lambda x, y, s: preprocessing.add_gaussian_noise(s, sigma=-1),
            ValueError,
            "sigma must be a finite number >= 0, got -1",
        ),
        (
            lambda x, y, s: preprocessing.add_gaussian_noise(x[:5], sigma=0.5),
            ValueError,
            "must be float images .* got uint8",
        ),
    ],
    ids=[
        "size-0",
        "size-below-labels",
        "size-float",
        "size-str",
        "size-leaves-no-label-out",
        "length-mismatch",
        "per-class-above-a-label",
        "per-class-0",
        "per-class-float",
        "sigma-inf",
        "sigma-nan",
        "sigma-negative",
        "noise-on-bytes",
    ],
)
def test_helpers_refuse_bad_arguments_by_name(mnist, call, error, expected):
    (x_train, y_train), _ = mnist
    with pytest.raises(error, match=expected):
        call(x_train, y_train, preprocessing.scale_images(x_train[:100]))


def test_prepare_mnist_splits_scales_and_flattens(mnist):
    (x_all, y_all), (x_test, y_test) = mnist
    full = preprocessing.prepare_mnist(quick=False)
    assert full.x_train.shape == (50000, 784) and full.x_val.shape == (10000, 784)
    assert full.x_test.shape == (10000, 784) and full.x_train.dtype == np.float32
    assert np.array_equal(full.y_train, y_all[:50000]) and np.array_equal(full.y_test, y_test)
    assert np.array_equal(full.y_val, y_all[50000:]), "validation is the last 10,000 training images"
    assert np.array_equal(full.x_val[0] * 255, x_all[50000].ravel().astype(np.float32))
    assert 0.0 == full.x_train.min() and full.x_train.max() == 1.0
    quick = preprocessing.prepare_mnist(quick=True)
    assert quick.x_train.shape == (6000, 784) and quick.x_val.shape == (1000, 784)
    assert quick.x_test.shape == (1000, 784)
    shares = np.bincount(y_all[:50000]) / 50000
    assert np.all(np.abs(np.bincount(quick.y_train) - 6000 * shares) <= 1), "quick subsets are stratified"
    assert np.bincount(quick.y_train).min() > 500, "notebook 09's largest quick-mode budget is 500 labels per digit"
    assert np.bincount(quick.y_val, minlength=10).min() > 80


def test_prepare_mnist_follows_quick_mode(monkeypatch):
    monkeypatch.setenv("AE_QUICK", "1")
    assert len(preprocessing.prepare_mnist().x_train) == 6000
