"""Project-level promises: pinned stacks agree, the two commands are documented, notebooks follow the house style,
the series never refers forward, and the committed outputs come from one clean, in-order run."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from utils import recipes

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def pins(text: str, pattern: str) -> dict[str, str]:
    return {
        name.lower().replace("_", "-"): version for name, version in re.findall(pattern, text, re.MULTILINE)
    }


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_environment_yml_mirrors_requirements():
    requirements = pins((ROOT / "requirements.txt").read_text(), r"^([A-Za-z0-9_.-]+)==([^\s#]+)")
    environment = (ROOT / "environment.yml").read_text()
    mirrored = pins(environment, r"^\s+- ([A-Za-z0-9_.-]+)==?([^\s#=]+)$")
    mirrored.pop("python", None)
    assert mirrored == requirements
    assert "python=3.11" in environment


def test_readme_and_ci_use_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    for notebook in NOTEBOOKS:
        assert f"notebooks/{notebook.name}" in readme, f"README does not link {notebook.name}"


def test_notebooks_are_numbered_without_gaps():
    assert [int(path.name[:2]) for path in NOTEBOOKS] == list(range(1, len(NOTEBOOKS) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    notebook = load(path)
    cells = notebook["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    code = [c for c in cells if c["cell_type"] == "code"]
    lines = [line for text in markdown for line in text.splitlines()]
    h1 = [line for line in lines if line.startswith("# ")]
    assert len(h1) == 1 and h1[0].startswith(f"# {path.name[:2]} ·"), h1
    assert "you will learn" in markdown[0]
    assert "## Setup" in lines
    assert "config.start_backend_quietly()" in "".join(code[0]["source"]), "the Setup cell comes first"
    assert "## Summary" in lines and "## Exercises" in lines
    assert lines.index("## Exercises") < lines.index("## Summary"), "exercises come before the Summary"
    assert cells[0]["cell_type"] == "markdown" and "colab.research.google.com" in "".join(cells[0]["source"])
    if path != NOTEBOOKS[-1]:
        following = NOTEBOOKS[NOTEBOOKS.index(path) + 1].name
        assert f"**Next:** [{following[:2]} ·" in markdown[-1] and f"({following})" in markdown[-1], markdown[
            -1
        ]
    # Every code cell is introduced by a sentence that says why it is there.
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert index > 0 and cells[index - 1]["cell_type"] == "markdown", (
                f"{path.name}: code cell {index} has no sentence before it:\n{''.join(cell['source'])[:200]}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_are_clean(path):
    notebook = load(path)
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c.get("outputs") is not None for c in code)
    # One clean run, top to bottom: every code cell executed, in order (a cell that only defines prints nothing).
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), (
        "committed without one full run"
    )
    assert sum(bool(c["outputs"]) for c in code) >= len(code) / 2, "committed without outputs"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], "an error output is committed"
    texts = "".join("".join(o.get("text", "")) for o in outputs)
    assert "quick mode (AE_QUICK=1)" not in texts, "commit the full-mode run, not the quick one"
    assert "Traceback" not in texts
    assert "Kernel is running over TCP" not in texts
    for cell in code:
        assert "NBVAL_" not in "".join(cell["source"]), "nbval markers belong in cell tags, not in the code"
        assert "inspect.getsource" not in "".join(cell["source"]), "write the code, don't print it"
    assert notebook["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"


def execution_span(path: Path) -> tuple[str, str]:
    """The first and last execution timestamps of a committed notebook's code cells."""
    times = [
        stamp
        for cell in load(path)["cells"]
        if cell["cell_type"] == "code"
        for stamp in (
            cell.get("metadata", {}).get("execution", {}).get("iopub.execute_input"),
            cell.get("metadata", {}).get("execution", {}).get("shell.execute_reply"),
        )
        if stamp
    ]
    assert times, f"{path.name} has no execution timestamps: commit the outputs of `make notebooks`"
    return min(times), max(times)


def test_committed_outputs_come_from_one_in_order_run():
    spans = [execution_span(path) for path in NOTEBOOKS]
    for (earlier, (_, earlier_end)), (later, (later_start, _)) in zip(
        zip(NOTEBOOKS, spans, strict=True), zip(NOTEBOOKS[1:], spans[1:], strict=True), strict=False
    ):
        assert later_start > earlier_end, f"{later.name} was executed before {earlier.name} had finished"
    first_start, last_end = spans[0][0], spans[-1][1]
    assert last_end[:10] == first_start[:10] or last_end > first_start, "one run, not pieces of several"


def code_source(path: Path) -> str:
    return "\n".join("".join(cell["source"]) for cell in load(path)["cells"] if cell["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_notebook_uses_a_later_notebooks_model(path):
    number, source = int(path.name[:2]), code_source(path)
    for recipe in recipes.RECIPES.values():
        if f'"{recipe.name}"' in source:
            assert recipe.notebook <= number, (
                f"{path.name} uses {recipe.name}, which notebook {recipe.notebook:02d} introduces"
            )


def test_every_recipe_is_introduced_by_its_notebook():
    sources = {int(path.name[:2]): code_source(path) for path in NOTEBOOKS}
    for recipe in recipes.RECIPES.values():
        assert f'"{recipe.name}"' in sources[recipe.notebook], (
            f"notebook {recipe.notebook:02d} should introduce {recipe.name}"
        )


def repository_address() -> str:
    """The repository address, written once in pyproject.toml's [project.urls] Repository."""
    with open(ROOT / "pyproject.toml", "rb") as handle:
        address = tomllib.load(handle)["project"]["urls"]["Repository"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", address), address
    return address


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_colab_badge_and_setup_cell_use_the_one_address(path):
    address = repository_address()
    owner_and_name = address.removeprefix("https://github.com/")
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells]
    badges = re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"']+", "\n".join(sources))
    assert badges == [
        f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/{path.name}"
    ]
    setup = next(source for cell, source in zip(cells, sources, strict=True) if cell["cell_type"] == "code")
    assert re.findall(r"^REPOSITORY = (.*)$", setup, re.MULTILINE) == [f'"{address}"']
    assert "git+{REPOSITORY}" in setup, "the Setup cell installs from REPOSITORY"
    other_addresses = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", "\n".join(sources))) - {address}
    assert not other_addresses, f"{path.name} names another repository: {sorted(other_addresses)}"


def test_readme_names_only_the_one_repository():
    address = repository_address()
    for other in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", (ROOT / "README.md").read_text()):
        assert other == address, f"README names another repository: {other}"
