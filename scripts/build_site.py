"""Build the course site from the committed, executed notebooks (`make site`); nothing is executed.

    python scripts/build_site.py          # the site in build/site/html/ (git-ignored)

The steps (well under a minute on a 2-core laptop):

1. stage the sources in build/site/src/: a copy of every notebooks/NN_*.ipynb with its Colab badge (an image on
   Google's servers) replaced by an "Open in Colab" link and a download of the committed notebook, the latent
   explorer's cell tagged so that site/static/explorer.js puts the live explorer after its static figure, and
   links out of notebooks/ pointed at the repository; the notebooks themselves are never changed;
2. generate the home page, the results page (the output of `scripts/train_weights.py --table` and the
   benchmark's printed tables from benchmarks/README.md) and the teacher's guide (goals, pauses, exercises
   and needs read from the notebooks, run times from the README's `make timing` table, plans from
   site/course_plans.toml), from the templates in site/pages/;
3. export the shipped 2-D VAE decoder for the live explorer (scripts/export_decoder.py; reused while the
   shipped weights and the exporter are unchanged), and copy KaTeX's stylesheet and fonts (npm, package.json);
4. run Sphinx (site/conf.py: myst-nb, sphinx-book-theme, KaTeX rendered at build time with Node), then check
   that no page loads anything from outside the site and that no equation failed to render.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
BUILD = ROOT / "build" / "site"
SOURCES, STATIC, EXTRA = BUILD / "src", BUILD / "static", BUILD / "extra"
HTML, DOCTREES = BUILD / "html", BUILD / "doctrees"
KATEX = ROOT / "node_modules" / "katex" / "dist"
PYTHON = sys.executable

GOALS_MARK = "**In this notebook you will learn to**"
PREDICT_MARK = "**Predict, then run.**"
BADGE = re.compile(
    r"\[!\[[^\]]*\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\((?P<url>[^)\s]+)\)"
)
EXERCISE = re.compile(r"^\*\*Exercise (?P<number>\d+)\.\*\*\s*(?P<text>.*?)\s*(?=<details>|$)", re.S)
SOLUTION = re.compile(r"<details>\s*<summary>\s*Solution\s*</summary>(?P<body>.*?)</details>", re.S)
HEADING = re.compile(r"^##\s+(.+?)\s*$", re.M)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# An exercise is homework when its worked solution trains a network: Keras's fit with epochs=, or the
# series' training helpers. Everything else (reading, computing, plotting, fitting PCA or a probe) fits in class.
TRAINS = re.compile(r"\.fit\((?:[^()]|\([^()]*\))*\bepochs\s*=|train_autoencoder\(|recipes\.train\(", re.S)
HOMEWORK_RULE = (
    "An exercise is marked *homework* when its worked solution trains a network (it calls Keras's `fit` with "
    "`epochs=`, or the series' `training.train_autoencoder` or `recipes.train`): even a short training run "
    "takes minutes on a laptop, and a class should not sit and watch it. Every other exercise reads, computes "
    "or plots with the models already loaded, and fits *in class*."
)
EXPLORER_CALL = "latent_explorer("
# A cell tag that myst-nb renders as the class tag_latent-explorer, which site/static/explorer.js looks for.
EXPLORER_TAG = "latent-explorer"
SHIPPED = re.compile(r"trained_model\(\s*[\"']([\w]+)[\"']")
BACKEND = re.compile(r"course\.setup\(\s*backend=[\"'](\w+)[\"'](?:,\s*cpu_devices=(\d+))?")
BACKEND_NAMES = {"jax": "JAX", "tensorflow": "TensorFlow", "torch": "PyTorch"}


def repository() -> str:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["urls"]["Repository"]


def write_if_changed(path: Path, content: str | bytes) -> None:
    """Write ``content`` unless the file already holds it, so that Sphinx rebuilds only what changed."""
    data = content.encode() if isinstance(content, str) else content
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def first_paragraph(text: str) -> str:
    return text.strip().split("\n\n")[0].strip()


# ---- reading the notebooks ----


@dataclass
class Exercise:
    number: int
    text: str
    homework: bool


@dataclass
class Pause:
    section: str
    question: str
    answer: str


@dataclass
class Notebook:
    path: Path
    cells: list = field(repr=False)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def code(self) -> list[str]:
        return [cell.source for cell in self.cells if cell.cell_type == "code"]

    @property
    def markdown(self) -> list[str]:
        return [cell.source for cell in self.cells if cell.cell_type == "markdown"]

    @property
    def title(self) -> str:
        match = re.match(r"#\s+(.+)", self.cells[0].source)
        if not match:
            raise SystemExit(f"{self.path.name}: its first cell does not start with the notebook's H1.")
        return match.group(1).strip()

    @property
    def colab(self) -> str:
        match = BADGE.search(self.cells[0].source)
        if not match:
            raise SystemExit(f"{self.path.name}: no Colab badge in its first cell.")
        return match.group("url")

    def link(self) -> str:
        return f"[{self.title}]({self.path.name})"

    def goals(self) -> list[str]:
        for text in self.markdown:
            if GOALS_MARK in text:
                after = text.split(GOALS_MARK, 1)[1].strip().splitlines()
                items = []
                for line in after:
                    if line.startswith("- "):
                        items.append(line[2:].strip())
                    elif items and line.startswith("  "):
                        items[-1] += " " + line.strip()
                    elif items or line.strip():
                        break
                return items
        raise SystemExit(f"{self.path.name}: no '{GOALS_MARK}' list.")

    def pauses(self) -> list[Pause]:
        """Every predict-then-run question, with the section it sits in and the prose after its answer cell."""
        pauses, section = [], ""
        for index, cell in enumerate(self.cells):
            if cell.cell_type != "markdown":
                continue
            if PREDICT_MARK in cell.source:
                before, after = cell.source.split(PREDICT_MARK, 1)
                headings = HEADING.findall(before)
                question = after.strip().split("\n\n")[0].strip()
                pauses.append(Pause(headings[-1] if headings else section, question, self._answer_after(index)))
            headings = HEADING.findall(cell.source)
            section = headings[-1] if headings else section
        return pauses

    def _answer_after(self, index: int) -> str:
        """The prose after the code cell that answers a question, up to the next heading."""
        rest = self.cells[index + 1 :]
        seen_code = False
        for cell in rest:
            if cell.cell_type == "code":
                seen_code = True
            elif seen_code:
                return re.split(r"^#{1,6}\s", cell.source, maxsplit=1, flags=re.M)[0].strip()
        return ""

    def exercises(self) -> list[Exercise]:
        found = []
        for text in self.markdown:
            match = EXERCISE.match(text)
            if match:
                solution = SOLUTION.search(text)
                code = "\n".join(PYTHON_BLOCK.findall(solution.group("body"))) if solution else ""
                found.append(
                    Exercise(int(match.group("number")), match.group("text").strip(), bool(TRAINS.search(code)))
                )
        return found

    def needs(self) -> list[str]:
        code = "\n".join(self.code)
        items = []
        shipped = list(dict.fromkeys(SHIPPED.findall(code)))
        if shipped:
            names = ", ".join(f"`{name}`" for name in shipped)
            items.append(f"shipped weights: {names} (they load by themselves)")
        setup = BACKEND.search(code)
        if setup:
            backend = BACKEND_NAMES.get(setup.group(1), setup.group(1))
            line = f"the {backend} backend, which the Setup cell picks"
            if setup.group(2):
                line += f"; it shows the CPU as {setup.group(2)} devices, so no second machine is needed"
            items.append(line)
        if "load_fashion_mnist" in code:
            items.append(
                "Fashion-MNIST: Debian's `dataset-fashion-mnist` (which `make setup` installs), or Keras's "
                "download in Colab"
            )
        live = sum(bool(TRAINS.search(source)) for source in self.code)
        if live:
            items.append(
                f"{live} cell{'s' if live > 1 else ''} that train{'' if live > 1 else 's'} live (included in the run time)"
            )
        return items


def series() -> list[Notebook]:
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SystemExit("no notebooks/NN_*.ipynb found")
    return [Notebook(path, nbformat.read(path, as_version=4).cells) for path in paths]


# ---- staging ----


def staged_notebook(notebook: Notebook, address: str) -> str:
    """The notebook as the site shows it: links instead of the badge, the explorer cell tagged."""
    staged = nbformat.read(notebook.path, as_version=4)
    links = (
        f'<p class="ae-notebook-links"><a class="ae-button" href="{notebook.colab}">Open in Colab</a> '
        f'<a class="ae-button" href="notebooks/{notebook.path.name}" download>Download the notebook (.ipynb)</a></p>'
    )
    staged.cells[0].source = BADGE.sub(lambda _: links, staged.cells[0].source, count=1)
    for cell in staged.cells:
        if cell.cell_type == "markdown":  # links out of notebooks/ (../README.md) go to the repository
            cell.source = re.sub(r"\]\(\.\./([^)\s]+)\)", rf"]({address}/blob/main/\1)", cell.source)
        elif EXPLORER_CALL in cell.source:
            tags = cell.metadata.setdefault("tags", [])
            if EXPLORER_TAG not in tags:
                tags.append(EXPLORER_TAG)
    return nbformat.writes(staged)


def stage_notebooks(notebooks: list[Notebook], address: str) -> None:
    wanted = {notebook.path.name for notebook in notebooks}
    for folder in (SOURCES, EXTRA / "notebooks"):
        for old in folder.glob("*.ipynb"):
            if old.name not in wanted:
                old.unlink()
    for notebook in notebooks:
        write_if_changed(SOURCES / notebook.path.name, staged_notebook(notebook, address))
        write_if_changed(EXTRA / "notebooks" / notebook.path.name, notebook.path.read_bytes())
    explorers = [notebook for notebook in notebooks if any(EXPLORER_CALL in source for source in notebook.code)]
    if not explorers:
        raise SystemExit(f"no notebook calls {EXPLORER_CALL}...): the live explorer would have nowhere to go.")


def stage_katex() -> None:
    if not (KATEX / "katex.min.js").is_file():
        raise SystemExit(f"{KATEX} is missing: run `npm ci` in the repository (`make site` does).")
    target = STATIC / "katex"
    write_if_changed(target / "katex.min.css", (KATEX / "katex.min.css").read_bytes())
    for font in (KATEX / "fonts").iterdir():
        write_if_changed(target / "fonts" / font.name, font.read_bytes())


def explorer_export_is_current() -> bool:
    """True when the exported decoder came from the shipped weights and the exporter as they are now."""
    sys.path.insert(0, str(ROOT))
    from utils import weights
    from utils.files import sha256_file

    header_path = STATIC / "explorer" / "vae_decoder_2d.json"
    if not header_path.is_file():
        return False
    header = json.loads(header_path.read_text())
    record = weights.entry("variational_autoencoder_2d")
    binary = header_path.parent / header.get("file", "")
    return bool(
        record
        and header.get("source", {}).get("sha256") == record["sha256"]
        and header.get("exporter_sha256") == sha256_file(ROOT / "scripts" / "export_decoder.py")
        and binary.is_file()
        and sha256_file(binary) == header.get("sha256")
    )


# ---- the generated pages ----


def fill(template: str, **values: str) -> str:
    text = (SITE / "pages" / template).read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        raise SystemExit(f"site/pages/{template}: no value for {', '.join(left)}")
    return text


def toctrees(notebooks: list[Notebook]) -> str:
    listed = "\n".join(notebook.stem for notebook in notebooks)
    return (
        f"\n```{{toctree}}\n:caption: The series\n:hidden:\n:maxdepth: 1\n\n{listed}\n```\n"
        "\n```{toctree}\n:caption: For teachers and the curious\n:hidden:\n:maxdepth: 1\n\n"
        "teachers_guide\nresults\n```\n"
    )


def home_page(notebooks: list[Notebook], address: str) -> str:
    readme = (ROOT / "README.md").read_text()
    intro = first_paragraph(re.split(r"^# .*$", readme, maxsplit=1, flags=re.M)[-1])
    blocks = []
    for notebook in notebooks:
        goals = "\n".join(f"  - {goal}" for goal in notebook.goals())
        blocks.append(f"- **{notebook.link()}**: you will learn to\n{goals}")
    return fill("home.md", intro=intro, repository=address, notebooks="\n".join(blocks)) + toctrees(notebooks)


def weights_table() -> subprocess.Popen:
    """`train_weights.py --table`, started now (it imports Keras) and read when the results page is written."""
    environment = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    command = [PYTHON, str(ROOT / "scripts" / "train_weights.py"), "--table"]
    pipes = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen(command, text=True, env=environment, **pipes)


def finished(process: subprocess.Popen, what: str) -> str:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{what} failed ({process.returncode}):\n{err[-3000:]}")
    return out


def benchmark_tables() -> str:
    """The benchmark's last full run as benchmarks/README.md records it: its first lines and first two tables."""
    text = (ROOT / "benchmarks" / "README.md").read_text()
    match = re.search(r"^## Output of the last full run.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not match:
        raise SystemExit("benchmarks/README.md has no '## Output of the last full run' section.")
    lines = match.group(1).strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Training-speed benchmark"))
    kept, tables, in_table = [], 0, False
    for line in lines[start:]:
        is_row = line.startswith("|")
        if in_table and not is_row:
            tables += 1
            if tables == 2:
                break
        in_table = is_row
        kept.append(line)
    if tables < 2 and not in_table:
        raise SystemExit("benchmarks/README.md: the last run's report has fewer than two tables.")
    header, body = [], []
    for line in kept:
        (body if body or line.startswith("|") else header).append(line)
    return "  \n".join(line for line in header if line.strip()) + "\n\n" + "\n".join(body).strip() + "\n"


def results_page(table: str, address: str) -> str:
    return fill("results.md", repository=address, weights_table=table.strip(), benchmark=benchmark_tables())


@dataclass
class Timing:
    run: str
    seconds: dict[str, float]


def timing() -> Timing:
    """The README's 'Time per notebook' table: the committed output of `make timing` (or `make notebooks`)."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Time per notebook$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not match:
        raise SystemExit("README.md has no '## Time per notebook' section (the output of `make timing`).")
    section = match.group(1)
    seconds = {
        Path(name).stem: float(value)
        for name, value in re.findall(r"^\|\s*(\d\d_\w+\.ipynb)\s*\|\s*([\d.]+)\s*\|", section, re.M)
    }
    run = next((line.strip() for line in section.splitlines() if line.startswith("Full mode")), "")
    return Timing(run, seconds)


def seconds_of(stem: str, measured: Timing) -> str:
    value = measured.seconds.get(stem)
    return f"{value:.1f} s" if value is not None else "not in the last `make timing` run"


def guide_entry(notebook: Notebook, measured: Timing) -> str:
    parts = [f"## {notebook.title}", ""]
    parts.append(
        f"**Run time** in full mode: {seconds_of(notebook.stem, measured)} · [the notebook's page]({notebook.path.name})"
    )
    parts += ["", "**Learning goals.** By the end, learners can:", ""]
    parts += [f"- {goal}" for goal in notebook.goals()]
    parts += ["", "**Where to pause: predict, then run.**", ""]
    for pause in notebook.pauses():
        parts.append(f"- In *{pause.section}*: {pause.question}")
        if pause.answer:
            parts += ["", "  <details><summary>What the run shows</summary>", ""]
            parts += [f"  {line}" if line else "" for line in pause.answer.splitlines()]
            parts += ["", "  </details>", ""]
    parts += ["", "**Exercises.**", ""]
    for exercise in notebook.exercises():
        where = "homework" if exercise.homework else "in class"
        text = " ".join(exercise.text.split())
        parts.append(f"- Exercise {exercise.number} (**{where}**): {text}")
    needs = notebook.needs()
    if needs:
        parts += ["", "**Have ready.**", ""] + [f"- {need}" for need in needs]
    return "\n".join(parts) + "\n"


def plans(notebooks: list[Notebook], measured: Timing) -> str:
    with open(SITE / "course_plans.toml", "rb") as handle:
        document = tomllib.load(handle)
    by_stem = {notebook.stem: notebook for notebook in notebooks}
    out = []
    for plan in document["plan"]:
        placed = [stem for lesson in plan["class"] for stem in lesson["notebooks"] + lesson.get("at_home", [])]
        missing = sorted(set(by_stem) - set(placed))
        unknown = sorted(set(placed) - set(by_stem))
        twice = sorted({stem for stem in placed if placed.count(stem) > 1})
        if missing or unknown or twice:
            raise SystemExit(
                f"site/course_plans.toml, '{plan['title']}': place every notebook exactly once "
                f"(missing: {missing or 'none'}; not in the series: {unknown or 'none'}; twice: {twice or 'none'})."
            )
        out += [f"### {plan['title']}", "", plan["summary"], ""]
        for number, lesson in enumerate(plan["class"], start=1):
            taught = [by_stem[stem] for stem in lesson["notebooks"]]
            home = [by_stem[stem] for stem in lesson.get("at_home", [])]
            times = [measured.seconds.get(notebook.stem) for notebook in taught]
            total = f"{sum(times):.0f} s" if None not in times else "not timed yet"
            line = f"{number}. **{lesson['title']}** (run time {total}): {', '.join(n.link() for n in taught)}."
            if home:
                line += f" At home: {', '.join(notebook.link() for notebook in home)}."
            if lesson.get("note"):
                line += f" *{lesson['note']}*"
            out.append(line)
        out.append("")
    return "\n".join(out)


def guide_page(notebooks: list[Notebook]) -> str:
    measured = timing()
    run = (measured.run.rstrip(".") + ".") if measured.run else "(the README names no run)."
    return fill(
        "teachers_guide.md",
        repository=repository(),
        timing_run=run,
        homework_rule=HOMEWORK_RULE,
        notebooks="\n".join(guide_entry(notebook, measured) for notebook in notebooks),
        plans=plans(notebooks, measured),
    )


# ---- checking the built site ----


class _Resources(HTMLParser):
    """The addresses a page loads (scripts, stylesheets, images, frames) and its images' alt text."""

    def __init__(self):
        super().__init__()
        self.loads, self.images = [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio") and attributes.get("src"):
            self.loads.append(attributes["src"])
        if tag == "link" and attributes.get("href") and attributes.get("rel") not in ("canonical",):
            self.loads.append(attributes["href"])
        if tag == "img":
            self.images.append((attributes.get("src", ""), attributes.get("alt")))


def check_site() -> tuple[int, int, int]:
    """Fail on anything loaded from outside the site or an equation KaTeX could not render; count the figures."""
    pages = sorted(HTML.rglob("*.html"))
    problems, images, without_alt = [], 0, 0
    for page in pages:
        text = page.read_text(errors="replace")
        if "katex-error" in text:
            problems.append(f"{page.relative_to(HTML)}: an equation KaTeX could not render")
        parser = _Resources()
        parser.feed(text)
        for address in parser.loads:
            if urlsplit(address).scheme or address.startswith("//"):
                problems.append(f"{page.relative_to(HTML)} loads {address}")
        for src, alt in parser.images:
            images += 1
            without_alt += not alt or not alt.strip() or alt.strip() == src or alt.strip().endswith(".png")
    if problems:
        raise SystemExit("the built site is not self-contained:\n  " + "\n  ".join(problems[:20]))
    return len(pages), images, without_alt


def sphinx() -> None:
    command = [PYTHON, "-m", "sphinx", "-b", "html", "-q", "-c", str(SITE), "-d", str(DOCTREES)]
    command += [str(SOURCES), str(HTML)]
    environment = {**os.environ, "AE_SITE_STAGE": str(BUILD)}
    result = subprocess.run(command, env=environment, text=True, capture_output=True, stdin=subprocess.DEVNULL)
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    if warnings:
        print("\n".join(warnings[-40:]), file=sys.stderr)
    if result.returncode != 0:
        raise SystemExit(f"Sphinx failed ({result.returncode}).")


def step(what: str, start: float) -> None:
    print(f"[{time.perf_counter() - start:5.1f} s] {what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="rebuild everything from an empty build/site/")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.clean and BUILD.exists():
        shutil.rmtree(BUILD)
    table = weights_table()
    export = None
    if not explorer_export_is_current():
        command = [PYTHON, str(ROOT / "scripts" / "export_decoder.py"), "--out", str(STATIC / "explorer")]
        export = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    address = repository()
    notebooks = series()
    step(f"staging {len(notebooks)} notebooks and the pages", start)
    stage_notebooks(notebooks, address)
    stage_katex()
    write_if_changed(SOURCES / "index.md", home_page(notebooks, address))
    write_if_changed(SOURCES / "teachers_guide.md", guide_page(notebooks))
    write_if_changed(SOURCES / "results.md", results_page(finished(table, "scripts/train_weights.py --table"), address))
    if export is not None:
        print(finished(export, "scripts/export_decoder.py").strip())
    step("running Sphinx", start)
    sphinx()
    step("checking the pages", start)
    pages, images, without_alt = check_site()
    relative = HTML.relative_to(ROOT)
    print(
        f"The site is in {relative}/ ({pages} pages, {len(notebooks)} notebooks, {time.perf_counter() - start:.0f} s)."
    )
    print(f"  Open {relative}/index.html, or serve it to use the live latent explorer:")
    print(f"  {Path(PYTHON).name} -m http.server --bind 127.0.0.1 --directory {relative} 8000")
    if without_alt:
        print(
            f"  note: {without_alt} of {images} images have no alt text: the notebooks' figure outputs carry no "
            '{"image/png": {"alt": ...}} metadata yet.'
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
