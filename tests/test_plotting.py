"""The series' figures on real digits: every text is large enough for a projector, and legends keep off the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.text import Text

from utils import data, plotting


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, y_train), _ = mnist
    images, labels = data.stratified_subset(x_train, y_train, 300, seed=0)
    return data.flatten_images(data.scale_images(images)), labels


def figures(digits):
    images, labels = digits
    plotting.set_style()
    history = {
        "loss": [0.2, 0.1, 0.09],
        "val_loss": [0.21, 0.11, 0.1],
        "mse": [0.05, 0.02, 0.01],
        "val_mse": [0.06, 0.03, 0.02],
    }
    points = images[:, :2] * 10 + labels[:, None]
    grid = np.linspace(-2, 2, 15)
    return {
        "digit grid": plotting.show_digit_grid(images[:30], labels=labels[:30]),
        "image rows": plotting.show_image_rows(
            {"original": images[:10], "noisy": data.add_gaussian_noise(images[:10], 0.3, seed=0)},
            captions={"original": [f"t={t:.1f}" for t in np.linspace(0, 1, 10)]},
        ),
        "learning curves": plotting.plot_learning_curves(history),
        "latent 2-d": plotting.plot_latent_2d(points, labels).figure,
        "class balance": plotting.plot_class_balance(labels, labels[:100]),
        "histograms": plotting.plot_histograms({"pixels": images.ravel()}, bins=30, log=True).figure,
        "latent grid": plotting.show_latent_grid(np.tile(images[:1], (225, 1)), grid, grid[::-1]),
        "architecture": plotting.show_architecture(
            [
                ("784\npixels", 784, "layer"),
                ("2 + 2\nμ, log σ²", 4, "posterior"),
                ("2\ncode", 2, "sampling"),
                ("784\nsigmoid", 784, "layer"),
            ],
            encoder_stages=1,
        ),
    }


def test_every_text_is_readable_on_a_projector(digits):
    for name, figure in figures(digits).items():
        texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts, name
        small = sorted(
            {(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < plotting.MIN_FONT_SIZE}
        )
        assert not small, f"{name}: text below {plotting.MIN_FONT_SIZE} pt: {small[:5]}"
        plotting.plt.close(figure)


def test_the_class_balance_legend_stays_off_the_bars(digits):
    _, labels = digits
    figure = plotting.plot_class_balance(labels, labels[:100])
    figure.canvas.draw()
    ax = figure.axes[0]
    legend = ax.get_legend().get_window_extent()
    for bar in ax.patches:
        assert not legend.overlaps(bar.get_window_extent()), "the legend covers a bar"
    plotting.plt.close(figure)


def test_digit_labels_of_a_latent_scatter_do_not_overlap(digits):
    """On a PCA projection of real digits, several class medians nearly coincide; their labels must not."""
    from sklearn.decomposition import PCA

    images, labels = digits
    points = PCA(n_components=2, random_state=0).fit_transform(images)
    medians = np.array([np.median(points[labels == d], axis=0) for d in range(10)])
    extent = np.ptp(points, axis=0)
    closest = min(
        np.hypot(*((medians[i] - medians[j]) / extent)) for i in range(10) for j in range(i + 1, 10)
    )
    assert closest < 0.07, "the data must have crowded medians for this test to mean anything"
    ax = plotting.plot_latent_2d(points, labels)
    spots = np.array([text.get_position() for text in ax.texts])
    assert len(spots) == 10
    gaps = [np.hypot(*((spots[i] - spots[j]) / extent)) for i in range(10) for j in range(i + 1, 10)]
    assert min(gaps) >= 0.069
    assert np.abs((spots - medians) / extent).max() < 0.1, "each label stays near its digit's median"
    plotting.plt.close(ax.figure)
