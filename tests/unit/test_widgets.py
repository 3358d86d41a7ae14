"""The latent explorer (notebook 10) on a 2-D PCA of real digits: live widgets, and a static figure when headless."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA

from utils import plotting, preprocessing, widgets


@pytest.fixture(scope="module")
def latent_space(mnist):
    """A decoder from a 2-D PCA of 2,000 real digits, and one anchor per digit: its first test image's code."""
    (x_train, _), (x_test, y_test) = mnist
    pca = PCA(n_components=2, random_state=0).fit(
        preprocessing.flatten_images(preprocessing.scale_images(x_train[:2000]))
    )
    scale = np.sqrt(pca.explained_variance_)  # so that codes spread over about -3..3, like a VAE's

    def decode(points: np.ndarray) -> np.ndarray:
        return np.clip(pca.inverse_transform(np.asarray(points) * scale), 0, 1).astype(np.float32)

    firsts = [int(np.flatnonzero(y_test == digit)[0]) for digit in range(10)]
    anchors = pca.transform(preprocessing.flatten_images(preprocessing.scale_images(x_test[firsts]))) / scale
    return decode, anchors, [f"digit {digit}" for digit in range(10)]


def png_pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L"))


def test_digit_png_draws_ink_dark_on_white(mnist):
    (x_train, _), _ = mnist
    digit = preprocessing.scale_images(x_train[:1])[0]
    pixels = png_pixels(widgets.digit_png(digit, scale=3))
    assert pixels.shape == (84, 84)
    assert np.array_equal(pixels[::3, ::3], np.round(255 * (1 - digit)).astype(np.uint8))
    assert np.array_equal(png_pixels(widgets.digit_png(digit.ravel())), png_pixels(widgets.digit_png(digit)))


def test_the_explorer_decodes_the_point_and_the_path_live(latent_space, monkeypatch):
    monkeypatch.delenv("AE_HEADLESS", raising=False)
    decode, anchors, names = latent_space
    explorer = widgets.latent_explorer(decode, anchors, names)
    explore, walk = explorer.children
    _, z0, z1, point_image = explore.children
    _, start, end, t, path_image = walk.children
    assert (z0.min, z0.max) == (-3.0, 3.0) and "ae-latent-explorer" in explorer._dom_classes
    assert point_image.value == widgets.digit_png(decode(np.zeros((1, 2), np.float32))[0])
    z0.value, z1.value = 2.0, -1.0
    assert point_image.value == widgets.digit_png(decode(np.array([[2.0, -1.0]], np.float32))[0])
    assert path_image.value == widgets.digit_png(decode(anchors[:1].astype(np.float32))[0])
    start.value, end.value, t.value = 3, 7, 1.0
    assert path_image.value == widgets.digit_png(decode(anchors[7:8].astype(np.float32))[0])
    t.value = 0.5
    halfway = (0.5 * anchors[3] + 0.5 * anchors[7]).astype(np.float32)[None]
    assert path_image.value == widgets.digit_png(decode(halfway)[0])


def test_a_headless_run_draws_the_same_views_as_a_figure(latent_space, monkeypatch, capsys):
    monkeypatch.setenv("AE_HEADLESS", "1")
    decode, anchors, names = latent_space
    figure = widgets.latent_explorer(decode, anchors, names, limit=2.5)
    assert isinstance(figure, plotting.plt.Figure)
    assert "cannot drag sliders" in capsys.readouterr().out
    assert not plotting.plt.fignum_exists(figure.number), "closed, so Jupyter shows it once"
    row_names = {ax.get_ylabel() for ax in figure.axes if ax.get_ylabel()}
    assert row_names == {"z[0] sweep", "digit 0 to digit 1"}
    assert "2 rows of 11 images, the same columns in every row: z[0] sweep above digit 0 to digit 1." in (
        plotting.alt_text(figure)
    )
    assert len(figure.axes) == 22, "11 steps in each of the two rows"


@pytest.mark.parametrize(
    ("arguments", "error", "expected"),
    [
        ({"anchors": np.zeros((1, 2)), "anchor_names": ["one"]}, ValueError, "at least two anchors"),
        ({"anchor_names": ["a", "b"]}, ValueError, "got 2 names for 10"),
        ({"anchors": np.zeros((10, 3))}, ValueError, r"anchors must have shape \(n, 2\)"),
        ({"anchors": np.full((10, 2), np.nan)}, ValueError, "anchors contains 20 NaN"),
        ({"limit": 0}, ValueError, "limit must be a finite number > 0, got 0"),
        ({"limit": np.inf}, ValueError, "limit must be a finite number > 0, got inf"),
    ],
    ids=["one-anchor", "names", "3-d", "nan", "limit-0", "limit-inf"],
)
def test_the_explorer_refuses_bad_arguments_by_name(latent_space, arguments, error, expected):
    decode, anchors, names = latent_space
    given = {"decode": decode, "anchors": anchors, "anchor_names": names, **arguments}
    with pytest.raises(error, match=expected):
        widgets.latent_explorer(**given)
