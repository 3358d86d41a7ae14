"""Notebook 10's explorer of a 2-D latent space: live sliders, or a static figure where nobody can drag them."""

import io
from collections.abc import Callable

import numpy as np

from utils import checks, config, plotting
from utils.checks import IMAGE_SHAPE

Decode = Callable[[np.ndarray], np.ndarray]


def digit_png(image: np.ndarray, scale: int = 6) -> bytes:
    """One digit (784 pixels or 28x28, values in [0, 1]) as a PNG, ink dark on white, enlarged ``scale`` times."""
    from PIL import Image

    pixels = np.clip(np.asarray(image, dtype=np.float32).reshape(IMAGE_SHAPE), 0, 1)
    picture = Image.fromarray(np.round(255 * (1 - pixels)).astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    picture.resize((IMAGE_SHAPE[1] * scale, IMAGE_SHAPE[0] * scale), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def latent_explorer(decode: Decode, anchors: np.ndarray, anchor_names: list[str], limit: float = 3.0):
    """Sliders that decode any point of a 2-D latent space, and a slider that walks between two anchors.

    ``decode`` maps latent points ``(n, 2)`` to images ``(n, 784)``; ``anchors`` are latent points of real
    images (e.g. the encoder's means for one test image of each digit), named by ``anchor_names``. Returns the
    widget to display, or, in a headless run (``AE_HEADLESS=1``), a static figure of the same two views.
    """
    anchors = checks.points(anchors, "anchors", 2).astype(np.float32)
    if len(anchor_names) != len(anchors) or len(anchors) < 2:
        raise ValueError(
            f"anchor_names must name each of at least two anchors; got {len(anchor_names)} names for {len(anchors)}."
        )
    limit = checks.number(limit, "limit", low=0, low_open=True)
    if config.headless():  # no sliders: a figure of z[0] swept at z[1] = 0, and of the walk between two anchors
        print(
            "A headless run (AE_HEADLESS=1) cannot drag sliders, so here is a static view of the explorer; "
            "open the notebook in JupyterLab or Colab to use it."
        )
        sweep = np.column_stack([np.linspace(-limit, limit, 11, dtype=np.float32), np.zeros(11, np.float32)])
        steps = np.linspace(0, 1, 11, dtype=np.float32)[:, None]
        path = (1 - steps) * anchors[0] + steps * anchors[1]
        figure = plotting.show_image_rows(
            {"z[0] sweep": decode(sweep), f"{anchor_names[0]} to {anchor_names[1]}": decode(path)},
            captions={"z[0] sweep": [f"{v:.1f}" for v in sweep[:, 0]]},
            title="Latent explorer, static view. Top: z[0] from its lowest to its highest value, z[1] = 0. "
            "Bottom: t = 0, 0.1, ..., 1",
        )
        # Closed, so that Jupyter shows it once, where the notebook displays it, and not again at the cell's end.
        plotting.plt.close(figure)
        return figure
    import ipywidgets as widgets  # core widgets only: they work in JupyterLab and in Colab's ipywidgets 7 alike

    def slider(name: str, low: float, high: float) -> widgets.FloatSlider:
        return widgets.FloatSlider(value=0.0, min=low, max=high, step=0.05, description=name, continuous_update=True)

    def decoded(point) -> bytes:
        return digit_png(decode(checks.points([point], "point", 2).astype(np.float32))[0])

    def image(point) -> widgets.Image:
        return widgets.Image(value=decoded(point), format="png", width=168, height=168).add_class("ae-decoded-image")

    def show_point(_change=None):
        point_image.value = decoded((z0.value, z1.value))

    def show_path(_change=None):
        path_image.value = decoded((1 - t.value) * anchors[start.value] + t.value * anchors[end.value])

    z0, z1, t = slider("z[0]", -limit, limit), slider("z[1]", -limit, limit), slider("t", 0.0, 1.0)
    options = [(name, index) for index, name in enumerate(anchor_names)]
    start = widgets.Dropdown(options=options, value=0, description="from")
    end = widgets.Dropdown(options=options, value=1, description="to")
    point_image, path_image = image((0.0, 0.0)), image(anchors[0])
    for control, show in ((z0, show_point), (z1, show_point), (start, show_path), (end, show_path), (t, show_path)):
        control.observe(show, names="value")
    explore = widgets.VBox([widgets.HTML("<b>Any point z</b>"), z0, z1, point_image])
    walk = widgets.VBox([widgets.HTML("<b>From one digit to another</b>"), start, end, t, path_image])
    return widgets.HBox([explore, walk]).add_class("ae-latent-explorer")
