"""The course site's one Sphinx extension: a figure's alt text comes from its notebook output's metadata.

The series writes each figure's alt text where the figure is made, into the output's metadata as
``{"image/png": {"alt": "..."}}``. myst-nb 1.4 passes only ``width`` and ``height`` from that metadata on to
the ``<img>``; this extension passes ``alt`` too. A figure without it gets no invented text: docutils then
falls back to the image's file name, which the site's browser test reports as missing alt text.
"""

from __future__ import annotations

from docutils import nodes
from myst_nb.core.render import NbElementRenderer

_render_image = NbElementRenderer.render_image


def render_image_with_alt(self, data):
    """myst-nb's image output, with ``alt`` from the output's metadata for that image type."""
    rendered = _render_image(self, data)
    alt = data.output_metadata.get(data.mime_type, {}).get("alt")
    if isinstance(alt, str) and alt.strip():
        for node in rendered:
            if isinstance(node, nodes.image):
                node["alt"] = alt.strip()
    return rendered


def setup(app):
    NbElementRenderer.render_image = render_image_with_alt
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
