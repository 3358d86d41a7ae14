"""The series' figures, one call each: every figure has an alt text, every text is readable on a projector."""

import itertools
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from utils import checks, config
from utils.checks import IMAGE_SHAPE
from utils.files import save_output

MIN_FONT_SIZE = 9  # points: no text smaller, so that it reads on a projector at the back of a classroom


def set_style() -> None:
    """The series' plot defaults: readable fonts, no top/right spines, crisp inline figures."""
    plt.rc("figure", dpi=90)
    plt.rc("savefig", dpi=120)
    plt.rc("font", size=11)
    plt.rc("axes", titlesize=11, grid=False)
    plt.rc("axes.spines", top=False, right=False)
    plt.rc("legend", fontsize=10)
    plt.rc("xtick", labelsize=10)
    plt.rc("ytick", labelsize=10)
    plt.rc("image", cmap="gray_r")


def save_fig(fig: plt.Figure, name: str) -> None:
    """Save ``fig`` as ``outputs/figures/NAME.png``, its alt text as the PNG's description (skipped if read-only)."""
    metadata = {"Description": alt_text(fig)}
    path = config.output_dir("figures") / f"{name}.png"
    save_output(path, lambda out: fig.savefig(out, format="png", bbox_inches="tight", metadata=metadata), "The figure")


def show_alt_text_in_notebooks() -> None:
    """Make Jupyter store every figure with its alt text, in the output's metadata, where the course site reads it."""
    from IPython import get_ipython  # installed with ipywidgets

    if get_ipython() is not None:  # None in plain Python, which has no notebook outputs to describe
        # The mime-bundle formatter adds metadata to what the inline backend draws (it replaces the PNG formatter).
        bundle = get_ipython().display_formatter.mimebundle_formatter
        bundle.for_type(plt.Figure, lambda fig: ({}, {"image/png": {"alt": alt_text(fig)}}))


def describe(fig: plt.Figure, text: str) -> plt.Figure:
    """Give ``fig`` the sentence that says what it shows: its alt text on the course site and for screen readers."""
    fig.alt_text = " ".join(text.split())
    return fig


def _described(fig: plt.Figure, title: str | None, text: str) -> plt.Figure:
    return describe(fig, f"{title}: {text}" if title else text)


def _listed(names: Sequence, most: int = 6) -> str:
    names = [str(name).replace("\n", " ") for name in names if str(name).strip()]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def alt_text(fig: plt.Figure) -> str:
    """The figure's alt text: the sentence its maker gave it, else one read off its titles, axes and legends."""
    if getattr(fig, "alt_text", ""):
        return fig.alt_text
    parts = [fig.get_suptitle()]
    for ax in fig.axes:
        if ax.get_visible() and (ax.axison or ax.get_title()):
            what = "a plot" + (f" titled {ax.get_title()!r}" if ax.get_title() else "")
            if ax.get_xlabel() or ax.get_ylabel():
                what += f" of {ax.get_ylabel() or 'values'} against {ax.get_xlabel() or 'position'}"
            if ax.get_legend() is not None:
                what += f", showing {_listed([text.get_text() for text in ax.get_legend().get_texts()])}"
            parts.append(what)
    return describe(fig, "; ".join(part for part in parts if part) or "A figure.").alt_text


def _images(array: np.ndarray, name: str = "images") -> np.ndarray:
    return checks.images(array, name, dtype="any").reshape(-1, *IMAGE_SHAPE)


def _named_rows(names: Sequence, count: int, captions: dict, **subplots) -> tuple[plt.Figure, np.ndarray]:
    """Rows of ``count`` axes without ticks, each row named on its left, ``captions[name]`` over its columns."""
    fig, axes = plt.subplots(len(names), count, squeeze=False, **subplots)
    for name, row in zip(names, axes, strict=True):
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
        for column, ax in enumerate(row):
            ax.set(xticks=[], yticks=[])
            if name in captions:
                ax.set_title(str(captions[name][column]), fontsize=MIN_FONT_SIZE, pad=2)
    return fig, axes


def show_digit_grid(
    images: np.ndarray, labels: Sequence | None = None, ncols: int = 10, title: str | None = None, scale: float = 1.0
) -> plt.Figure:
    """A grid of digits, with an optional caption (a label or any text) over each one."""
    images = _images(images)
    checks.integer(ncols, "ncols", 1)
    if labels is not None and len(labels) < len(images):
        raise ValueError(f"labels has {len(labels)} captions for {len(images)} images; give one per image.")
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.9 * scale, nrows * 1.05 * scale), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(images[index], vmin=0, vmax=images.max() if images.dtype == np.uint8 else 1)
            if labels is not None:
                ax.set_title(str(labels[index]), fontsize=MIN_FONT_SIZE, pad=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    captioned = f", captioned {_listed(labels[: len(images)])}" if labels is not None else ""
    return _described(fig, title, f"{len(images)} images in rows of {ncols}{captioned}.")


def show_image_rows(
    rows: dict[str, np.ndarray], captions: dict[str, Sequence] | None = None, title: str | None = None
) -> plt.Figure:
    """Rows of digits on the same columns (e.g. original / reconstruction), each row named on the left."""
    if not isinstance(rows, dict) or not rows:
        raise ValueError("rows must be a non-empty dict of {row name: images}.")
    rows = {name: _images(images, f"rows[{name!r}]") for name, images in rows.items()}
    count = len(next(iter(rows.values())))
    for name, images in rows.items():
        if len(images) != count:
            raise ValueError(f"row {name!r} has {len(images)} images, expected {count}.")
    fig, axes = _named_rows(list(rows), count, captions or {}, figsize=(count * 0.85, len(rows) * 0.95))
    for row, images in zip(axes, rows.values(), strict=True):
        high = 255 if images.dtype == np.uint8 else 1
        for ax, image in zip(row, images, strict=True):
            ax.imshow(np.clip(image, 0, high), vmin=0, vmax=high)
            ax.spines[:].set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    order = " above ".join(rows) if len(rows) <= 4 else _listed(rows)
    return _described(fig, title, f"{len(rows)} rows of {count} images, the same columns in every row: {order}.")


def show_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, title: str | None = None) -> plt.Figure:
    """Originals above their reconstructions, for the same digits."""
    return show_image_rows({"original": originals, "reconstruction": reconstructions}, title=title)


def _round_log_ticks(low: float, high: float) -> list[float]:
    powers = range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
    for steps in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [float(f"{m * 10.0**p:.3g}") for p in powers for m in steps if low <= m * 10.0**p <= high]
        if len(ticks) >= 3:  # three to six of them
            return ticks[:: 1 + len(ticks) // 7]
    return sorted({float(f"{v:.2g}") for v in (low, np.sqrt(low * high), high)})


def plot_learning_curves(history: dict[str, list[float]], metrics: Sequence[str] = ("loss", "mse")) -> plt.Figure:
    """Training and validation curves per epoch for each metric in ``metrics``."""
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict of metric name -> values per epoch, got {type(history).__name__}.")
    shown = [m for m in metrics if len(history.get(m, ())) > 0]
    if not shown:
        raise ValueError(
            f"history has no values for any of {tuple(metrics)}; it has {sorted(history) or 'no metrics'}. "
            "Pass record.history from a finished training run."
        )
    for key in shown + [f"val_{m}" for m in shown if f"val_{m}" in history]:
        if len(history[key]) != len(history[shown[0]]) or not np.all(np.isfinite(history[key])):
            raise ValueError(f"history[{key!r}] must hold one finite number per epoch, got {history[key]!r}.")
    epochs = np.arange(1, len(history[shown[0]]) + 1)
    best = {}  # metric -> the epoch of its lowest validation value
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 3.3), squeeze=False)
    for ax, metric in zip(axes.flat, shown, strict=True):
        ax.plot(epochs, history[metric], "o-", ms=3, label="training")
        if f"val_{metric}" in history:
            best[metric] = int(np.argmin(history[f"val_{metric}"])) + 1
            ax.plot(epochs, history[f"val_{metric}"], "s-", ms=3, label="validation")
            ax.axvline(best[metric], color="gray", ls=":", lw=1, label=f"best epoch ({best[metric]})")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_yscale("log")  # the slow descent of the later epochs stays visible next to the first ones
        values = np.concatenate([history[key] for key in (metric, f"val_{metric}") if key in history])
        ticks = _round_log_ticks(values.min(), values.max())
        ax.set_yticks(ticks, [f"{v:g}" for v in ticks])  # 0.05, not 5x10^-2
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set(xlabel="epoch", ylabel=f"{metric} (log scale)")
        ax.legend()
    fig.tight_layout()
    lowest = f"; the validation {shown[0]} is lowest in epoch {best[shown[0]]}" if shown[0] in best else ""
    curves = f"{' and '.join(shown)} on the training and validation images"
    return describe(fig, f"Learning curves over {len(epochs)} epochs: {curves}, on log scales{lowest}.")


def _spread_apart(centres: np.ndarray, points: np.ndarray, gap: float = 0.07, rounds: int = 50) -> np.ndarray:
    """Label positions near ``centres`` but at least ``gap`` apart, as a share of the points' extent per axis."""
    low, extent = points.min(axis=0), np.ptp(points, axis=0)
    extent = np.where(extent > 0, extent, 1.0)
    spots = (centres - low) / extent
    for _ in range(rounds):
        moved = False
        for i, j in itertools.combinations(range(len(spots)), 2):
            offset = spots[j] - spots[i]
            distance = float(np.hypot(*offset))
            if distance < gap:
                push = (gap - distance) / 2 * (offset / distance if distance > 1e-9 else np.array([1.0, 0.0]))
                spots[i] -= push
                spots[j] += push
                moved = True
        if not moved:
            break
    return spots * extent + low


def plot_latent_2d(
    points: np.ndarray, labels: np.ndarray, title: str = "", ax: plt.Axes | None = None, point_size: float = 3.0
) -> plt.Axes:
    """A 2-D scatter of codes coloured by digit, with each digit's label at its median point."""
    points = checks.points(points, "points", 2)
    labels = np.asarray(labels)
    if labels.shape != (len(points),):
        raise ValueError(f"labels must have shape ({len(points)},), one per point; got {labels.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    scatter = ax.scatter(
        *points.T, c=labels, cmap="tab10", s=point_size, alpha=0.6, vmin=-0.5, vmax=9.5, rasterized=True
    )
    digits = np.unique(labels)
    centres = np.array([np.median(points[labels == digit], axis=0) for digit in digits])
    box = {"boxstyle": "circle,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0}
    for digit, centre in zip(digits, _spread_apart(centres, points), strict=True):
        ax.text(*centre, str(digit), fontsize=13, weight="bold", ha="center", va="center", bbox=box)
    ax.figure.colorbar(scatter, ax=ax, ticks=range(10), fraction=0.046, pad=0.04)
    ax.set(title=title, xticks=[], yticks=[])
    where = "coloured by digit, each digit's label at the middle of its points"
    earlier = getattr(ax.figure, "alt_text", "")  # the figure's other panels, described already
    _described(ax.figure, title, f"a scatter plot of {len(points):,} points in two dimensions, {where}.")
    describe(ax.figure, f"{earlier} {ax.figure.alt_text}")
    return ax


def plot_class_balance(labels: np.ndarray, test_labels: np.ndarray | None = None) -> plt.Figure:
    """Bars with the number of images of each digit (training, and test if given)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    digits, counts = np.arange(10), np.bincount(labels, minlength=10)
    width = 0.8 if test_labels is None else 0.4
    ax.bar(digits - (0 if test_labels is None else width / 2), counts, width, label="training")
    if test_labels is not None:
        share = len(labels) / len(test_labels)
        test_counts = np.bincount(test_labels, minlength=10) * share
        ax.bar(digits + width / 2, test_counts, width, label=f"test (x{share:.0f}, to compare shares)")
    ax.set(xticks=digits, xlabel="digit", ylabel="images")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    least, most = f"{counts.min():,} ({counts.argmin()})", f"{counts.max():,} ({counts.argmax()})"
    test = ", with the test images' counts beside them, scaled to the same total" if test_labels is not None else ""
    return describe(fig, f"Bars of the number of training images of each digit, from {least} to {most}{test}.")


def plot_histograms(
    series: dict[str, np.ndarray],
    bins: int | np.ndarray = 50,
    xlabel: str = "",
    log: bool = False,
    density: bool = False,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Overlaid histograms of several named arrays on one axis: counts, or densities with ``density=True``."""
    if not series or any(np.size(values) == 0 for values in series.values()):
        raise ValueError("series must be a non-empty dict of {name: values}, each with at least one value.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.3))
    for name, values in series.items():
        ax.hist(np.ravel(values), bins=bins, alpha=0.55, density=density, label=name, log=log)
    ax.set(xlabel=xlabel, ylabel="density" if density else "count" + (" (log scale)" if log else ""))
    ax.legend()
    return ax


def show_latent_grid(
    decoded: np.ndarray,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    title: str = "",
    axis_labels: tuple[str, str] = ("z[0]", "z[1]"),
) -> plt.Figure:
    """Decoded digits tiled into one image, one per point of a 2-D latent grid (rows: y from high to low)."""
    grid_x, grid_y = checks.points(grid_x, "grid_x"), checks.points(grid_y, "grid_y")
    rows, cols = len(grid_y), len(grid_x)
    decoded = _images(decoded, "decoded")
    if len(decoded) != rows * cols:
        raise ValueError(
            f"decoded has {len(decoded)} images, expected len(grid_y) * len(grid_x) = {rows} * {cols} = {rows * cols}."
        )
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(decoded.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28), vmin=0, vmax=1)
    # Every other tick, so that the labels stay large enough to read.
    ax.set_xticks(np.arange(0, cols, 2) * 28 + 14, [f"{v:.1f}" for v in grid_x[::2]], fontsize=MIN_FONT_SIZE)
    ax.set_yticks(np.arange(0, rows, 2) * 28 + 14, [f"{v:.1f}" for v in grid_y[::2]], fontsize=MIN_FONT_SIZE)
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1], title=title)
    fig.tight_layout()
    across = f"{axis_labels[0]} from {grid_x[0]:.1f} to {grid_x[-1]:.1f} across"
    down = f"{axis_labels[1]} from {grid_y[0]:.1f} to {grid_y[-1]:.1f} down"
    return _described(fig, title, f"a {rows} by {cols} grid of decoded digits, {across} and {down}.")


def show_architecture(stages: Sequence[tuple[str, int, str]], title: str = "") -> plt.Figure:
    """An autoencoder as a row of bars, one per stage ``(label, size, kind)``, each as tall as its number of values.

    Kinds: ``"layer"``, ``"code"``, ``"posterior"`` (a VAE's mean and log-variance) or ``"sampling"`` (its code,
    ``z = mu + sigma * eps``). The stages before the code are bracketed as the encoder, those after it as the decoder.
    """
    kinds = {"layer": "C0", "code": "C3", "posterior": "C3", "sampling": "C1"}
    for label, size, kind in stages:
        if kind not in kinds or not (isinstance(size, int | np.integer) and size > 0):
            raise ValueError(
                f"stage {label!r}: expected a kind in {sorted(kinds)} and a size > 0, got {kind!r}, {size!r}."
            )
    code = next((i for i, (_, _, kind) in enumerate(stages) if kind in ("code", "posterior")), None)
    if code is None:
        raise ValueError("stages must include the code: a stage of kind 'code' or 'posterior'.")
    largest = max(size for _, size, _ in stages)
    tops = [max(3.0 * size / largest, 0.08) / 2 for _, size, _ in stages]  # a floor keeps small stages visible
    fig, ax = plt.subplots(figsize=(max(6.0, 1.25 * len(stages)), 3.6))
    for x, ((label, _, kind), top) in enumerate(zip(stages, tops, strict=True)):
        ax.add_patch(plt.Rectangle((1.5 * x - 0.17, -top), 0.34, 2 * top, color=kinds[kind], alpha=0.85))
        ax.text(1.5 * x, -1.75, label, ha="center", va="top", fontsize=10)
        if kind == "sampling":
            ax.text(1.5 * x, top + 0.1, "z = μ + σ·ε\nε ~ N(0, I)", ha="center", va="bottom", fontsize=10, color="C1")
    for x, (top, next_top) in enumerate(zip(tops, tops[1:], strict=False)):
        left, right = 1.5 * x + 0.17, 1.5 * (x + 1) - 0.17
        ax.fill([left, right, right, left], [top, next_top, -next_top, -top], color="0.85", zorder=0)
    decoder_start = code + 1 + (stages[code][2] == "posterior")
    for start, stop, name in ((0, code, "encoder"), (decoder_start, len(stages) - 1, "decoder")):
        ax.plot([1.5 * start - 0.2, 1.5 * stop + 0.2], [1.85, 1.85], color="0.4", lw=1)
        ax.text(0.75 * (start + stop), 1.95, name, ha="center", va="bottom", fontsize=11, color="0.3")
    ax.set(xlim=(-0.8, 1.5 * (len(stages) - 1) + 0.8), ylim=(-2.6, 2.4), title=title)
    ax.axis("off")
    fig.tight_layout()
    listed = ", ".join(label.replace("\n", " ") for label, _, _ in stages)
    return _described(fig, title, f"a diagram of the stages, each a bar as tall as its number of values: {listed}.")


def show_maps(
    rows: dict[str, np.ndarray], title: str | None = None, captions: Sequence | None = None, same_scale: bool = True
) -> plt.Figure:
    """Rows of small 2-D arrays (filters, feature maps, errors): blue negative, white zero, red positive.

    With ``same_scale`` all share one scale, shown by a colour bar; else each is scaled to its own largest value, to
    show its pattern. Without negative values the scale runs white to red. ``captions`` go over the first row.
    """
    if not isinstance(rows, dict) or not rows:
        raise ValueError("rows must be a non-empty dict of {row name: arrays of shape (n, height, width)}.")
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in rows.items()}
    count = len(next(iter(arrays.values())))
    for name, values in arrays.items():
        if values.ndim != 3 or len(values) != count or not np.all(np.isfinite(values)):
            raise ValueError(f"rows[{name!r}] must be {count} finite 2-D arrays, got shape {values.shape}.")
    limit = max(float(np.abs(values).max()) for values in arrays.values()) or 1.0
    signless = all(float(values.min()) >= 0 for values in arrays.values())  # e.g. ReLU outputs: white to red
    first_row = {next(iter(arrays)): captions} if captions is not None else {}
    size = (count * 0.85 + 0.8, len(arrays) * 0.95 + 0.3)
    fig, axes = _named_rows(list(arrays), count, first_row, figsize=size, layout="constrained")
    for row, values in zip(axes, arrays.values(), strict=True):
        for ax, array in zip(row, values, strict=True):
            scale = limit if same_scale else float(np.abs(array).max()) or 1.0
            shown = ax.imshow(array, cmap="Reds" if signless else "RdBu_r", vmin=0 if signless else -scale, vmax=scale)
    if same_scale:
        fig.colorbar(shown, ax=axes, fraction=0.02, pad=0.01)
    if title:
        fig.suptitle(title)
    names = " above ".join(f"{name or 'more'}" for name in arrays)
    colours = "white for zero, red for large values" if signless else "blue negative and red positive"
    scales = "on one colour scale" if same_scale else "each on its own colour scale"
    return _described(fig, title, f"{len(arrays)} rows of {count} small maps ({names}), {colours}, {scales}.")


def plot_rate_distortion(
    curves: dict[str, tuple[Sequence[float], Sequence[float]]],
    lines: dict[str, float] | None = None,
    xlabel: str = "bytes per image (log scale)",
    ylabel: str = "mean PSNR (dB)",
    title: str = "",
) -> plt.Figure:
    """Quality against bytes on a log axis, one curve per codec named at its right end (no legend to look up);
    ``lines`` marks byte counts (lossless sizes, raw) with named dotted verticals."""
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict of {name: (bytes, quality)}.")
    fig, ax = plt.subplots(figsize=(8.5, 5.4))
    ends = []
    for index, (name, (sizes, quality)) in enumerate(curves.items()):
        sizes = checks.points(sizes, f"curves[{name!r}] bytes")
        quality = checks.points(quality, f"curves[{name!r}] quality")
        if len(sizes) != len(quality) or sizes.min() <= 0:
            raise ValueError(f"curves[{name!r}] needs as many positive byte counts as quality values.")
        order = np.argsort(sizes)
        ax.plot(sizes[order], quality[order], "o-", ms=4, color=f"C{index}")
        ends.append((np.log10(sizes[order][-1]), quality[order][-1]))
    ax.set_xscale("log")
    bottom, top = ax.get_ylim()
    for label, position in (lines or {}).items():
        ax.axvline(position, color="gray", ls=":", lw=1)
        ax.text(position, bottom, f" {label}", rotation=90, fontsize=MIN_FONT_SIZE, color="dimgray", va="bottom")
    box = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}  # over other lines
    ends = np.array(ends)
    for i, (name, (x, y)) in enumerate(zip(curves, _spread_apart(ends, ends, gap=0.09), strict=True)):
        ax.annotate(
            name, (10**x, y), (6, 0), textcoords="offset points", color=f"C{i}", weight="bold", va="center", bbox=box
        )
    ax.set_xlim(right=ax.get_xlim()[1] * 2.5)  # room for the names at the curves' ends
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(bottom, top))
    fig.tight_layout()
    return fig


def plot_roc_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    chance: str | None = "guessing",
    log_x: bool = True,
    xlabel: str | None = None,
    ylabel: str = "true positive rate",
) -> plt.Axes:
    """ROC curves ``{name: (false positive rates, true positive rates)}``, on a log false-positive axis by default."""
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict of {name: (false positive rates, true positive rates)}.")
    checked = {}
    for name, pair in curves.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"curves[{name!r}] must be a pair (false positive rates, true positive rates).")
        rates = [checks.points(values, f"curves[{name!r}][{i}]") for i, values in enumerate(pair)]
        if len(rates[0]) != len(rates[1]) or not all(np.all((r >= 0) & (r <= 1)) for r in rates):
            raise ValueError(f"curves[{name!r}] must hold two rates in [0, 1] of the same length.")
        checked[name] = rates
    _, ax = plt.subplots(figsize=(6, 5))
    for name, (false_positives, true_positives) in checked.items():
        ax.plot(false_positives, true_positives, label=name)
    lowest = min((float(fp[fp > 0].min()) for fp, _ in checked.values() if np.any(fp > 0)), default=1.0)
    if chance:
        line = np.logspace(np.log10(lowest), 0, 200) if log_x else np.linspace(0, 1, 2)
        ax.plot(line, line, "k:", lw=1, label=chance)
    if log_x:
        ax.set_xscale("log")
        ax.set_xlim(lowest, 1)
    default_xlabel = "false positive rate" + (" (log scale)" if log_x else "")
    ax.set(xlabel=default_xlabel if xlabel is None else xlabel, ylabel=ylabel, ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=MIN_FONT_SIZE)
    return ax
