"""Sphinx configuration of the course site. `make site` (scripts/build_site.py) stages the sources and runs Sphinx.

Why this stack: Sphinx with myst-nb and sphinx-book-theme builds from the committed notebooks' stored outputs
with nothing but PyPI packages (pinned in requirements.txt), offline; Jupyter Book 2 (mystmd) fetches its theme
from the web at build time and fails without a network. site/README.md says more.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

SITE = Path(__file__).resolve().parent
ROOT = SITE.parent
STAGE = Path(os.environ.get("AE_SITE_STAGE", ROOT / "build" / "site"))  # scripts/build_site.py sets it
sys.path.insert(0, str(SITE / "_ext"))

with open(ROOT / "pyproject.toml", "rb") as handle:
    REPOSITORY = tomllib.load(handle)["project"]["urls"]["Repository"]

project = "Autoencoders on MNIST with Keras"
author = "the course's authors"
copyright = "the course's authors, MIT License"

extensions = ["myst_nb", "sphinxcontrib.katex", "ae_site"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# The notebooks are shown with their committed outputs; nothing is executed.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no widget manager from a CDN (the headless outputs hold no widgets anyway)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # a notebook starts with its H1; later "## N." headings are sections

# Equations: KaTeX renders them at build time (Node runs the KaTeX of package.json, `npm ci`), and the page
# loads only KaTeX's stylesheet and fonts, from _static/katex/: no MathJax, no CDN.
html_math_renderer = "katex"
katex_prerender = True
katex_js_path = str(ROOT / "node_modules" / "katex" / "dist" / "katex.min.js")
katex_css_path = "katex/katex.min.css"

html_theme = "sphinx_book_theme"
html_title = project
html_static_path = [str(SITE / "static"), str(STAGE / "static")]
html_extra_path = [str(STAGE / "extra")]  # the committed notebooks, for download
html_favicon = str(
    SITE / "static" / "favicon.svg"
)  # a page without one makes the browser ask for /favicon.ico
html_css_files = ["site.css"]
html_js_files = ["explorer.js"]
html_copy_source = False  # the search shows snippets from the pages themselves
html_show_sourcelink = False
html_last_updated_fmt = None
# The theme's light/dark switch starts from the reader's system setting (without it, the theme logs an error
# on a first visit: "Got invalid theme mode").
html_context = {"default_mode": "auto"}
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_repository_button": True,
    "use_download_button": False,  # each notebook page links the committed .ipynb instead
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "navbar_persistent": [],  # the search field sits in the sidebar; no second one in a top bar
}
