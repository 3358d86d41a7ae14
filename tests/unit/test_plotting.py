"""The series' figures on real digits: every text is large enough for a projector, and legends keep off the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.text import Text
from PIL import Image

from utils import plotting, preprocessing

HISTORY = {
    "loss": [0.2, 0.1, 0.09],
    "val_loss": [0.21, 0.11, 0.1],
    "mse": [0.05, 0.02, 0.01],
    "val_mse": [0.06, 0.03, 0.02],
}
GRID = np.linspace(-2, 2, 15)
# Every figure the series draws, built from real digits (images, labels).
FIGURES = {
    "digit grid": lambda images, labels: plotting.show_digit_grid(images[:30], labels=labels[:30]),
    "image rows": lambda images, labels: plotting.show_image_rows(
        {"original": images[:10], "noisy": preprocessing.add_gaussian_noise(images[:10], 0.3, seed=0)},
        captions={"original": [f"t={t:.1f}" for t in np.linspace(0, 1, 10)]},
    ),
    "reconstructions": lambda images, labels: plotting.show_reconstructions(images[:8], images[8:16], "title"),
    "learning curves": lambda images, labels: plotting.plot_learning_curves(HISTORY),
    "latent 2-d": lambda images, labels: plotting.plot_latent_2d(images[:, :2] * 10 + labels[:, None], labels).figure,
    "class balance": lambda images, labels: plotting.plot_class_balance(labels, labels[:100]),
    "histograms": lambda images, labels: plotting.plot_histograms({"pixels": images.ravel()}, bins=30, log=True).figure,
    "latent grid": lambda images, labels: plotting.show_latent_grid(np.tile(images[:1], (225, 1)), GRID, GRID[::-1]),
    "maps": lambda images, labels: plotting.show_maps(
        {"errors": images[:6].reshape(-1, 28, 28) - images[6:12].reshape(-1, 28, 28)}, captions=list("abcdef")
    ),
    "rate distortion": lambda images, labels: plotting.plot_rate_distortion(
        {"codec a": ([10, 20, 40], [18.0, 21.0, 23.0]), "codec b": ([30, 60, 120], [19.0, 22.0, 25.0])},
        lines={"raw": 784},
    ),
    "roc curves": lambda images, labels: (
        plotting.plot_roc_curves(
            {"score": (np.array([0.0, 0.001, 0.01, 0.1, 1.0]), np.array([0.0, 0.5, 0.8, 0.95, 1.0]))}
        ).figure
    ),
    "architecture": lambda images, labels: plotting.show_architecture(
        [
            ("784\npixels", 784, "layer"),
            ("2 + 2\nμ, log σ²", 4, "posterior"),
            ("2\ncode", 2, "sampling"),
            ("784\nsigmoid", 784, "layer"),
        ]
    ),
}


# The alt texts of some of them, word for word (the course site and screen readers read them).
ALT_TEXTS = {
    "image rows": "2 rows of 10 images, the same columns in every row: original above noisy.",
    "reconstructions": "title: 2 rows of 8 images, the same columns in every row: original above reconstruction.",
    "learning curves": "Learning curves over 3 epochs: loss and mse on the training and validation images, on log "
    "scales; the validation loss is lowest in epoch 3.",
    "latent grid": "a 15 by 15 grid of decoded digits, z[0] from -2.0 to 2.0 across and z[1] from 2.0 to -2.0 down.",
    "maps": "1 rows of 6 small maps (errors), blue negative and red positive, on one colour scale.",
    "roc curves": "a plot of true positive rate against false positive rate (log scale), showing score, guessing",
    "architecture": "a diagram of the stages, each a bar as tall as its number of values: 784 pixels, 2 + 2 μ, log σ², "
    "2 code, 784 sigmoid.",
}


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, y_train), _ = mnist
    images, labels = preprocessing.stratified_subset(x_train, y_train, 300, seed=0)
    return preprocessing.flatten_images(preprocessing.scale_images(images)), labels


@pytest.mark.parametrize("name", FIGURES)
def test_every_text_is_readable_on_a_projector(digits, name):
    plotting.set_style()
    figure = FIGURES[name](*digits)
    try:
        texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts, name
        small = sorted({(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < plotting.MIN_FONT_SIZE})
        assert not small, f"{name}: text below {plotting.MIN_FONT_SIZE} pt: {small[:5]}"
    finally:
        plotting.plt.close(figure)


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_says_what_it_shows(digits, name):
    figure = FIGURES[name](*digits)
    text = plotting.alt_text(figure)
    plotting.plt.close(figure)
    assert text == ALT_TEXTS.get(name, text) and text != "A figure." and "\n" not in text, text


def test_an_undescribed_figure_is_described_by_its_titles_axes_and_legends():
    figure, axes = plotting.plt.subplots(1, 3)
    figure.suptitle("Three panels")
    for line in range(8):
        axes[0].plot([0, line], label=f"line {line}")
    axes[0].legend()
    axes[0].set(title="lines", xlabel="x")
    axes[1].axis("off")  # an empty panel says nothing
    axes[2].set_ylabel("y")
    expected = "Three panels; a plot titled 'lines' of values against x, showing line 0, line 1, line 2, line 3, "
    assert plotting.alt_text(figure) == expected + "line 4, line 5 and 2 more; a plot of y against position"
    assert plotting.alt_text(plotting.describe(figure, "  Said\n  by its maker. ")) == "Said by its maker."
    assert plotting.alt_text(plotting.plt.figure()) == "A figure."
    plotting.plt.close("all")


def test_notebooks_store_each_figure_with_its_alt_text(digits, monkeypatch):
    import IPython

    class Formatter:
        def for_type(self, kind, function):
            self.kind, self.function = kind, function

    shell = type("Shell", (), {})()
    shell.display_formatter = type("Display", (), {"mimebundle_formatter": Formatter()})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    plotting.show_alt_text_in_notebooks()  # plain Python: nothing to do, and no error
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    plotting.show_alt_text_in_notebooks()
    formatter = shell.display_formatter.mimebundle_formatter
    figure = plotting.show_digit_grid(digits[0][:3], title="Three")
    assert formatter.kind is plotting.plt.Figure
    assert formatter.function(figure) == ({}, {"image/png": {"alt": "Three: 3 images in rows of 10."}})
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
    closest = min(np.hypot(*((medians[i] - medians[j]) / extent)) for i in range(10) for j in range(i + 1, 10))
    assert closest < 0.07, "the data must have crowded medians for this test to mean anything"
    ax = plotting.plot_latent_2d(points, labels)
    spots = np.array([text.get_position() for text in ax.texts])
    assert len(spots) == 10
    gaps = [np.hypot(*((spots[i] - spots[j]) / extent)) for i in range(10) for j in range(i + 1, 10)]
    assert min(gaps) >= 0.069
    assert np.abs((spots - medians) / extent).max() < 0.1, "each label stays near its digit's median"
    plotting.plt.close(ax.figure)


def test_a_figure_of_two_latent_panels_describes_both(digits):
    images, labels = digits
    figure, axes = plotting.plt.subplots(1, 2)
    for ax, title in zip(axes, ("pixels", "codes"), strict=True):
        plotting.plot_latent_2d(images[:, :2], labels, title=title, ax=ax)
    text = plotting.alt_text(figure)
    plotting.plt.close(figure)
    panel = "a scatter plot of 300 points in two dimensions, coloured by digit, each digit's label at the middle of its points."
    assert text == f"pixels: {panel} codes: {panel}"


def test_the_architecture_brackets_encoder_and_decoder():
    figure = plotting.show_architecture(
        [("784", 784, "layer"), ("256", 256, "layer"), ("32\ncode", 32, "code"), ("784", 784, "layer")]
    )
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts.count("encoder") == 1 and texts.count("decoder") == 1
    plotting.plt.close(figure)


def test_save_fig_writes_a_png_under_outputs(digits, quick_outputs):
    images, _ = digits
    figure = plotting.show_digit_grid(images[:10])
    plotting.save_fig(figure, "ten_digits")
    plotting.plt.close(figure)
    saved = quick_outputs / "figures" / "ten_digits.png"
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(saved) as png:
        assert png.info["Description"] == "10 images in rows of 10.", "the alt text travels in the PNG"


def with_nan_rows(points: np.ndarray, rows: list[int]) -> np.ndarray:
    poisoned = points.astype(np.float64)
    poisoned[rows] = np.nan
    return poisoned


@pytest.mark.parametrize(
    ("call", "error", "expected"),
    [
        (lambda i, y: plotting.show_digit_grid(i[:0]), ValueError, "images is empty"),
        (
            lambda i, y: plotting.show_digit_grid(i[:10], labels=y[:5]),
            ValueError,
            "labels has 5 captions for 10 images",
        ),
        (lambda i, y: plotting.show_digit_grid(i[:10], ncols=0), ValueError, "ncols must be at least 1"),
        (lambda i, y: plotting.plot_learning_curves({}), ValueError, "history has no values"),
        (lambda i, y: plotting.plot_learning_curves({"loss": [], "val_loss": []}), ValueError, "history has no values"),
        (lambda i, y: plotting.plot_learning_curves([0.2, 0.1]), TypeError, "history must be a dict"),
        (
            lambda i, y: plotting.plot_learning_curves({"loss": [0.2, np.nan], "val_loss": [0.2, 0.1]}),
            ValueError,
            r"history\['loss'\] must hold one finite number per epoch",
        ),
        (
            lambda i, y: plotting.plot_latent_2d(with_nan_rows(np.zeros((100, 2)), [7]), y[:100]),
            ValueError,
            "points contains 2 NaN",
        ),
        (
            lambda i, y: plotting.plot_latent_2d(np.zeros((100, 2)), y[:99]),
            ValueError,
            r"labels must have shape \(100,\)",
        ),
        (
            lambda i, y: plotting.show_latent_grid(i[:4], np.array([0.0, np.nan]), np.array([0.0, 1.0])),
            ValueError,
            "grid_x contains 1 NaN",
        ),
        (
            lambda i, y: plotting.show_latent_grid(i[:3], np.zeros(2), np.zeros(2)),
            ValueError,
            "decoded has 3 images, expected",
        ),
        (lambda i, y: plotting.show_image_rows({}), ValueError, "rows must be a non-empty dict"),
        (
            lambda i, y: plotting.show_image_rows({"a": i[:3], "b": i[:2]}),
            ValueError,
            "row 'b' has 2 images, expected 3",
        ),
        (lambda i, y: plotting.show_architecture([("x", 0, "layer")]), ValueError, "stage 'x': expected a kind"),
        (lambda i, y: plotting.show_architecture([("784", 784, "layer")]), ValueError, "stages must include the code"),
        (lambda i, y: plotting.plot_histograms({"empty": []}), ValueError, "series must be a non-empty dict"),
        (lambda i, y: plotting.show_architecture([("x", 8, "conv")]), ValueError, "stage 'x': expected a kind in"),
        (lambda i, y: plotting.show_maps([]), ValueError, "rows must be a non-empty dict"),
        (
            lambda i, y: plotting.show_maps({"a": np.zeros((3, 4, 4)), "b": np.zeros((2, 4, 4))}),
            ValueError,
            r"rows\['b'\] must be 3 finite 2-D arrays, got shape \(2, 4, 4\)",
        ),
        (lambda i, y: plotting.plot_rate_distortion({}), ValueError, "curves must be a non-empty dict"),
        (
            lambda i, y: plotting.plot_rate_distortion({"a": ([0, 2], [20.0, 21.0])}),
            ValueError,
            r"curves\['a'\] needs as many positive byte counts as quality values",
        ),
        (lambda i, y: plotting.plot_roc_curves({"a": [0.1]}), ValueError, r"curves\['a'\] must be a pair"),
        (
            lambda i, y: plotting.plot_roc_curves({"a": ([0, 2], [0, 1])}),
            ValueError,
            r"curves\['a'\] must hold two rates in \[0, 1\] of the same length",
        ),
    ],
    ids=[
        "grid-empty",
        "grid-few-labels",
        "grid-ncols-0",
        "curves-no-history",
        "curves-empty-history",
        "curves-not-a-dict",
        "curves-nan",
        "scatter-nan",
        "scatter-labels",
        "latent-grid-nan",
        "latent-grid-count",
        "rows-empty",
        "rows-uneven",
        "architecture-size-0",
        "architecture-no-code",
        "histogram-empty",
        "architecture-kind",
        "maps-not-a-dict",
        "maps-uneven",
        "rate-distortion-empty",
        "rate-distortion-zero-bytes",
        "roc-not-a-pair",
        "roc-rate-above-1",
    ],
)
def test_figures_refuse_bad_arguments_by_name(digits, call, error, expected):
    images, labels = digits
    with pytest.raises(error, match=expected):
        call(images, labels)
    plotting.plt.close("all")
