"""The course site in a real browser: `make site`'s build, served on 127.0.0.1, every page opened in Chromium.

The test builds the site from scratch (scripts/build_site.py --clean, from the committed notebooks; as root, in
a network namespace with no network at all, which shows that it builds offline), serves build/site/html/ on a
free port of 127.0.0.1, and opens every page in headless Debian chromium through Playwright, as
tests/system/test_browser.py does. A request for anything outside 127.0.0.1 is recorded and refused. It checks
that no page logs a console error or loads anything from outside, that every image loads and has alt text,
that every internal link resolves, that the search finds the VAE page, and that dragging the latent
explorer's slider redraws its digit. Screenshots go to outputs/site/ (or $AE_OUTPUT_DIR/site/).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import NOTEBOOKS, ROOT, needs_root
from tests.notebooks.test_structure import repository_address

HTML = ROOT / "build" / "site" / "html"
VAE_PAGE = "10_variational.html"
NOTEBOOK_PAGE = "04_evaluation.html"  # the screenshot of one notebook page
SEARCH_TERM = "reparameterization"
BUILD_SECONDS = 300


def can_drop_the_network() -> bool:
    """True when this process may run a command in a network namespace of its own, with no network at all."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


@dataclass
class Site:
    html: Path
    offline: bool  # built in a network namespace without a network (unshare --net)


@pytest.fixture(scope="module")
def site() -> Site:
    """The site, built from scratch as `make site` builds it; with no network at all where root can arrange it."""
    offline = can_drop_the_network()
    command = [sys.executable, str(ROOT / "scripts" / "build_site.py"), "--clean"]
    command = ["unshare", "--net", *command] if offline else command
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=BUILD_SECONDS, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as error:
        printed = [part.decode() if isinstance(part, bytes) else part or "" for part in (error.stdout, error.stderr)]
        raise AssertionError(
            f"the site build took over {BUILD_SECONDS} s; it printed:\n" + "\n".join(printed)
        ) from None
    assert result.returncode == 0, f"the site build failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "The site is in build/site/html/" in result.stdout
    return Site(HTML, offline)


@needs_root("a network namespace without a network, for the build (unshare --net)")
def test_the_site_builds_without_a_network(site):
    assert site.offline, "`unshare --net` is not available here, so the build could not be cut off from the network"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(site) -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1, on a free port, in a thread of this process."""
    handler = functools.partial(_QuietHandler, directory=str(site.html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(os.environ.get("AE_OUTPUT_DIR", ROOT / "outputs")) / "site"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Visit:
    """What one page did in the browser."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    folded: list[tuple[str, bool]] = field(default_factory=list)  # each <details>: its summary, and whether open


def watched_page(browser: Browser, server: str, visit: Visit, **options) -> Page:
    """A new page that records console errors and failed requests, and refuses every request off 127.0.0.1."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, **options)
    page.on("console", lambda message: message.type == "error" and visit.console_errors.append(message.text))
    page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
    page.on("requestfailed", lambda request: visit.failed_requests.append(request.url))
    page.on("response", lambda response: response.status >= 400 and visit.failed_requests.append(response.url))

    def route(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            visit.outside_requests.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return page


IMAGES = """async () => {
    const images = [...document.querySelectorAll('img')];
    await Promise.all(images.map((image) => image.complete ? null : new Promise((done) => {
        image.addEventListener('load', done); image.addEventListener('error', done);
    })));
    return images.map((image) => ({
        src: image.getAttribute('src'), alt: image.getAttribute('alt'), loaded: image.naturalWidth > 0,
    }));
}"""


def pages(site: Path) -> list[str]:
    """Every page of the site (the theme's template fragments in _static/ are no pages)."""
    found = (path.relative_to(site).as_posix() for path in site.rglob("*.html"))
    return sorted(name for name in found if not name.startswith("_static/"))


@pytest.fixture(scope="module")
def visits(site, server, browser) -> dict[str, Visit]:
    """Every page of the site, opened once: what it logged, requested, showed and linked to."""
    found = {}
    for name in pages(site.html):
        visit = Visit()
        page = watched_page(browser, server, visit)
        try:
            page.goto(f"{server}/{name}", wait_until="load")
            page.wait_for_load_state("networkidle")
            visit.images = page.evaluate(IMAGES)
            visit.links = page.eval_on_selector_all("a[href]", "links => links.map(link => link.href)")
            visit.folded = page.eval_on_selector_all(
                "details", "all => all.map(d => [d.querySelector('summary')?.textContent.trim() ?? '', d.open])"
            )
        finally:
            page.close()
        found[name] = visit
    return found


def test_every_page_opens_without_console_errors_or_outside_requests(visits):
    assert len(visits) >= len(NOTEBOOKS) + 3, sorted(visits)
    problems = {
        name: {
            key: value
            for key, value in vars(visit).items()
            if key in ("console_errors", "outside_requests", "failed_requests") and value
        }
        for name, visit in visits.items()
    }
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, json.dumps(problems, indent=1)[:4000]


def test_every_image_loads(visits):
    broken = {name: [image["src"] for image in visit.images if not image["loaded"]] for name, visit in visits.items()}
    broken = {name: sources for name, sources in broken.items() if sources}
    assert not broken, broken
    assert sum(len(visit.images) for visit in visits.values()) > 0


def test_every_image_has_alt_text(visits):
    """Alt text says what a figure shows: not empty, and not the file name docutils puts there when none is given."""
    missing = {}
    for name, visit in visits.items():
        for image in visit.images:
            alt = (image["alt"] or "").strip()
            if not alt or alt == image["src"] or re.search(r"\.(png|jpe?g|svg|gif)$", alt):
                missing.setdefault(name, []).append(image["src"])
    total = sum(len(sources) for sources in missing.values())
    assert not missing, f"{total} images have no alt text, on {len(missing)} pages: " + json.dumps(missing)[:1500]


def test_every_internal_link_resolves(site, server, visits):
    broken = []
    for name, visit in visits.items():
        for link in visit.links:
            address = urlsplit(link)
            if f"{address.scheme}://{address.netloc}" != server:
                continue
            path = site.html / unquote(address.path).lstrip("/")
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                broken.append(f"{name}: {link} (no such file)")
            elif address.fragment and path.suffix == ".html":
                ids = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
                if unquote(address.fragment) not in ids:
                    broken.append(f"{name}: {link} (no such anchor)")
    assert not broken, "\n".join(broken[:40])


def test_every_notebook_page_links_colab_and_the_notebook(site, visits):
    for notebook in NOTEBOOKS:
        visit = visits[f"{notebook.stem}.html"]
        owner_and_name = repository_address().removeprefix("https://github.com/")
        colab = f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/{notebook.name}"
        assert any(link.split("?")[0] == colab for link in visit.links), f"{notebook.stem}: no Open in Colab link"
        downloads = [link for link in visit.links if link.endswith(f"/notebooks/{notebook.name}")]
        assert downloads, f"{notebook.stem}: no download of its .ipynb"
        assert (site.html / "notebooks" / notebook.name).read_bytes() == notebook.read_bytes()


def test_hints_and_solutions_are_folded_as_in_the_notebooks(visits):
    for notebook in NOTEBOOKS:
        text = "".join(
            cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "markdown"
        )
        expected = re.findall(r"<summary>\s*(Hint|Solution)\s*</summary>", text)
        folded = visits[f"{notebook.stem}.html"].folded
        assert [summary for summary, _ in folded] == expected, f"{notebook.stem}: {folded}"
        assert not any(is_open for _, is_open in folded), f"{notebook.stem}: a hint or solution is open"


def test_the_navigation_shows_the_series_in_order(server, browser):
    page = browser.new_page()
    try:
        page.goto(f"{server}/index.html")
        links = page.eval_on_selector_all(".bd-sidenav a.reference.internal", "links => links.map(l => l.href)")
    finally:
        page.close()
    listed = [Path(urlsplit(link).path).stem for link in links]
    series = [stem for stem in listed if re.fullmatch(r"\d\d_\w+", stem)]
    assert series == [notebook.stem for notebook in NOTEBOOKS]


def test_the_search_finds_the_vae_page(server, browser):
    visit = Visit()
    page = watched_page(browser, server, visit)
    try:
        page.goto(f"{server}/search.html?q={SEARCH_TERM}")
        results = page.locator("#search-results ul.search li a")
        expect(results.first).to_be_visible(timeout=30_000)
        found = results.evaluate_all("links => links.map(link => link.getAttribute('href'))")
    finally:
        page.close()
    assert any(href.split("?")[0].split("#")[0].endswith(VAE_PAGE) for href in found), found
    assert not visit.console_errors and not visit.outside_requests, vars(visit)


def canvas_pixels(page: Page, panel: str) -> str:
    return page.locator(f".ae-explorer [data-panel={panel}] canvas").evaluate("canvas => canvas.toDataURL()")


def drag(page: Page, slider, fraction: float) -> None:
    """Drag a range input's thumb with the mouse, from where it is to ``fraction`` of its width."""
    box = slider.bounding_box()
    value = float(slider.input_value())
    low, high = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    start_x = box["x"] + box["width"] * (value - low) / (high - low)
    page.mouse.move(start_x, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2, steps=12)
    page.mouse.up()


def test_dragging_the_explorers_sliders_redraws_the_digit(server, browser, screenshots):
    visit = Visit()
    page = watched_page(browser, server, visit)
    try:
        page.goto(f"{server}/{VAE_PAGE}")
        explorer = page.locator(".ae-explorer")
        expect(explorer).to_have_attribute("data-state", "ready", timeout=30_000)
        # It sits right after the notebook's static explorer figure, which stays.
        assert page.locator(".tag_latent-explorer + .ae-explorer").count() == 1
        assert page.locator(".tag_latent-explorer img").count() >= 1
        explorer.scroll_into_view_if_needed()
        explorer.screenshot(path=str(screenshots / "explorer-before.png"))

        z0 = explorer.locator("[data-panel=point] input[type=range]").first
        before = canvas_pixels(page, "point")
        drag(page, z0, 0.95)
        assert float(z0.input_value()) > 2, z0.input_value()
        assert canvas_pixels(page, "point") != before, "dragging z[0] did not change the decoded digit"

        t = explorer.locator("[data-panel=path] input[type=range]")
        before = canvas_pixels(page, "path")
        drag(page, t, 0.6)
        assert 0.3 < float(t.input_value()) < 0.9, t.input_value()
        assert canvas_pixels(page, "path") != before, "dragging t did not change the decoded digit"
        explorer.screenshot(path=str(screenshots / "explorer.png"))
    finally:
        page.close()
    assert not visit.console_errors and not visit.outside_requests, vars(visit)


def test_the_explorer_refuses_a_decoder_file_that_fails_its_sha256(server, browser):
    visit = Visit()
    page = watched_page(browser, server, visit)
    damaged = bytearray((HTML / "_static" / "explorer" / "vae_decoder_2d.bin").read_bytes())
    damaged[1000] ^= 0x01
    page.route("**/vae_decoder_2d.bin", lambda route: route.fulfill(body=bytes(damaged)))
    try:
        page.goto(f"{server}/{VAE_PAGE}")
        explorer = page.locator(".ae-explorer")
        expect(explorer).to_have_attribute("data-state", "refused", timeout=30_000)
        expect(explorer).to_contain_text("fails its sha256 check")
        assert explorer.locator("canvas").count() == 0
    finally:
        page.close()
    assert any("sha256" in error for error in visit.console_errors), visit.console_errors


def test_figures_stay_on_white_in_dark_mode(server, browser):
    page = browser.new_page(color_scheme="dark")
    try:
        page.goto(f"{server}/{VAE_PAGE}")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        figure = page.locator(".cell_output img").first
        style = figure.evaluate("img => [getComputedStyle(img).backgroundColor, getComputedStyle(img).filter]")
    finally:
        page.close()
    assert style == ["rgb(255, 255, 255)", "none"], style


def test_screenshots_of_the_home_page_and_a_notebook_page(server, browser, screenshots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        for name, shot in (("index.html", "home.png"), (NOTEBOOK_PAGE, "notebook-page.png")):
            page.goto(f"{server}/{name}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(screenshots / shot))
            assert (screenshots / shot).stat().st_size > 10_000
    finally:
        page.close()


def test_the_build_takes_alt_text_from_the_output_metadata(tmp_path):
    """site/_ext/ae_site.py: an image output's {"image/png": {"alt": ...}} becomes its <img alt>; none is invented."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    said = "Ten test digits, originals above, reconstructions below"
    with_alt = nbformat.v4.new_output("display_data", {"image/png": png}, metadata={"image/png": {"alt": said}})
    without = nbformat.v4.new_output("display_data", {"image/png": png.replace("DUlEQVR42mP8", "DUlEQVR42mP9")})
    cell = nbformat.v4.new_code_cell("plot()", outputs=[with_alt, without])
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A figure"), cell])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    sources, stage = tmp_path / "src", tmp_path / "stage"
    for folder in (sources, stage / "static", stage / "extra"):
        folder.mkdir(parents=True)
    nbformat.write(notebook, sources / "figure.ipynb")
    (sources / "index.md").write_text("# Index\n\n```{toctree}\nfigure\n```\n")
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-q",
        "-c",
        str(ROOT / "site"),
        str(sources),
        str(tmp_path / "html"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "AE_SITE_STAGE": str(stage)})
    assert result.returncode == 0, result.stderr[-3000:]
    images = re.findall(r'<img alt="([^"]*)" src="([^"]*)"', (tmp_path / "html" / "figure.html").read_text())
    assert len(images) == 2, images
    assert images[0][0] == said
    assert images[1][0] == images[1][1], "a figure without alt metadata must not get invented alt text"
