"""Reconstruction metrics on real digits: MSE, PSNR and SSIM, their checks, their tables and their files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from utils import metrics, preprocessing


@pytest.fixture(scope="module")
def digits(mnist):
    """500 real test digits, stratified, flat and in [0, 1], with their labels."""
    (_, _), (x_test, y_test) = mnist
    images, labels = preprocessing.stratified_subset(x_test, y_test, 500, seed=0)
    return preprocessing.flatten_images(preprocessing.scale_images(images)), labels


def test_metrics_on_real_digits(digits):
    images, _ = digits
    noisy = preprocessing.add_gaussian_noise(images.reshape(-1, 28, 28), sigma=0.1, seed=0).reshape(-1, 784)
    mse = metrics.mse_per_image(images, noisy)
    assert mse.shape == (500,) and np.all(mse > 0)
    psnr = metrics.psnr_per_image(images, noisy)
    assert np.allclose(psnr, 10 * np.log10(1 / mse), atol=1e-3)
    ssim = metrics.ssim_per_image(images, noisy)
    assert np.all(ssim < 1)
    assert np.allclose(metrics.ssim_per_image(images, images), 1.0, atol=1e-6)
    assert np.all(np.isinf(metrics.psnr_per_image(images[:5], images[:5]))), "a perfect copy has infinite PSNR"
    worse = metrics.ssim_per_image(images, preprocessing.add_gaussian_noise(images, sigma=0.4, seed=0))
    assert np.all(worse < ssim)
    both = metrics.reconstruction_metrics(images, noisy)
    assert sorted(both) == ["mse", "psnr", "ssim"] and np.array_equal(both["mse"], mse)
    assert metrics.summarize(both) == pytest.approx({"mse": mse.mean(), "psnr": psnr.mean(), "ssim": ssim.mean()})
    assert all(type(value) is float for value in metrics.summarize(both).values()), "plain floats, for JSON"


def test_metrics_refuse_bad_shapes(digits):
    images, _ = digits
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.mse_per_image(images[:10], images[:11])
    with pytest.raises(ValueError, match=r"\(n, 28, 28\) or \(n, 784\)"):
        metrics.psnr_per_image(images[:, :100], images[:, :100])
    with pytest.raises(ValueError, match="originals must be float images"):
        metrics.ssim_per_image((images * 255).astype(np.uint8), images)


@pytest.mark.parametrize("metric", [metrics.mse_per_image, metrics.psnr_per_image, metrics.ssim_per_image])
def test_metrics_refuse_the_wrong_scale(digits, metric):
    images, _ = digits
    with pytest.raises(ValueError, match=r"originals must have pixels in \[0, 1\].*divide by 255"):
        metric(images * 255, images)
    with pytest.raises(ValueError, match=r"reconstructions must have pixels in \[0, 1\]; got values from -0.5"):
        metric(images, images - 0.5)
    poisoned = images.copy()
    poisoned[3, 100] = np.nan
    with pytest.raises(ValueError, match="reconstructions contains NaN or infinity"):
        metric(images, poisoned)
    with pytest.raises(ValueError, match="originals is empty"):
        metric(images[:0], images[:0])


def test_metrics_match_scikit_image_and_tf_image(digits):
    """PSNR is scikit-image's, image by image; SSIM agrees with the tf.image values the series used before."""
    import tensorflow as tf
    from skimage.metrics import peak_signal_noise_ratio

    images, _ = digits
    noisy = preprocessing.add_gaussian_noise(images, sigma=0.2, seed=4)
    ours = metrics.psnr_per_image(images, noisy)
    reference = [peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(images, noisy, strict=True)]
    np.testing.assert_allclose(ours, reference, rtol=1e-5)
    as_grids = images.reshape(-1, 28, 28, 1), noisy.reshape(-1, 28, 28, 1)
    tf_ssim = tf.image.ssim(*as_grids, max_val=1.0).numpy()
    np.testing.assert_allclose(metrics.ssim_per_image(images, noisy), tf_ssim, atol=1e-4)
    assert f"{metrics.ssim_per_image(images, noisy).mean():.3g}" == f"{tf_ssim.mean():.3g}"


def test_ssim_equals_scikit_image_called_image_by_image(digits):
    """The one call on stacked images gives each image exactly scikit-image's own SSIM for it."""
    from skimage.metrics import structural_similarity

    images, _ = digits
    noisy = preprocessing.add_gaussian_noise(images, sigma=0.3, seed=5)
    settings = {"data_range": 1.0, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    pairs = zip(images.reshape(-1, 28, 28), noisy.reshape(-1, 28, 28), strict=True)
    one_by_one = [structural_similarity(a, b, **settings) for a, b in pairs]
    np.testing.assert_array_equal(metrics.ssim_per_image(images, noisy), one_by_one)
    assert metrics.ssim_per_image(images[:1], noisy[:1])[0] == one_by_one[0]


def test_per_digit_table_and_markdown(digits):
    images, labels = digits
    per_image = {"mse": metrics.mse_per_image(images, np.zeros_like(images))}
    rows = metrics.per_digit_table(per_image, labels)
    assert [row["digit"] for row in rows] == list(range(10))
    assert sum(row["images"] for row in rows) == 500
    ones = images[labels == 1]
    assert rows[1]["mse"] == pytest.approx(float(np.mean(ones**2)))
    table = metrics.markdown_table(rows, {"mse": ".4f"})
    assert table.splitlines()[0] == "| digit | images | mse |"
    assert table.splitlines()[1] == "|---|---|---|"
    assert f"| 1 | {len(ones)} | {rows[1]['mse']:.4f} |" in table
    with pytest.raises(ValueError, match="at least one row"):
        metrics.markdown_table([])


def test_save_metrics_writes_json_whole(digits, quick_outputs):
    images, _ = digits
    values = metrics.summarize(metrics.reconstruction_metrics(images[:50], np.zeros_like(images[:50])))
    path = metrics.save_metrics("zeros", values)
    assert path == quick_outputs / "metrics" / "zeros.json", "quick mode writes under outputs/quick/"
    assert json.loads(path.read_text()) == values and path.read_text().endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["zeros.json"], "no temporary file is left"
