"""The house structure of every notebook, and the promises about its committed outputs: one clean, in-order,
full-mode run, no errors, no project machinery shown to the learner, and nothing that refers forward."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import NOTEBOOKS, ROOT, notebook_id
from utils import recipes

SETUP_CODE_LINES, SETUP_NON_BLANK_LINES = 6, 8
# What only the project needs to know: its own goals, budgets and drift checks (they live in the tests).
MACHINERY = re.compile(
    r"\b(target|budget)\b[^\n]{0,60}\b(met|not met|meets|misses)\b"
    r"|\bsame (architecture|starting weights|settings|samples)\b[^\n]{0,40}\bas\b"
    r"|\bthe series (aimed|set itself)\b",
    re.IGNORECASE,
)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in load(path)["cells"] if cell["cell_type"] == "code"]


def shown_text(cell: dict) -> str:
    """What a learner sees under a code cell: its printed text and the text form of its displays."""
    return "".join(
        "".join(output.get("text", ""))
        + "".join(output.get("data", {}).get("text/plain", ""))
        + "".join(output.get("data", {}).get("text/markdown", ""))
        for output in cell.get("outputs", [])
    )


def test_notebooks_are_numbered_without_gaps():
    assert [int(path.name[:2]) for path in NOTEBOOKS] == list(range(1, len(NOTEBOOKS) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_notebook_structure(path):
    cells = load(path)["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    lines = [line for text in markdown for line in text.splitlines()]
    h1 = [line for line in lines if line.startswith("# ")]
    assert len(h1) == 1 and h1[0].startswith(f"# {path.name[:2]} ·"), h1
    assert "you will learn" in markdown[0]
    assert "## Setup" in lines
    assert "course.setup(" in "".join(code_cells(path)[0]["source"]), "the Setup cell comes first"
    assert "## Summary" in lines and "## Exercises" in lines
    assert lines.index("## Exercises") < lines.index("## Summary"), "exercises come before the Summary"
    assert cells[0]["cell_type"] == "markdown" and "colab.research.google.com" in "".join(cells[0]["source"])
    if path != NOTEBOOKS[-1]:
        following = NOTEBOOKS[NOTEBOOKS.index(path) + 1].name
        assert f"**Next:** [{following[:2]} ·" in markdown[-1] and f"({following})" in markdown[-1], markdown[-1]
    for index, cell in enumerate(cells):  # every code cell is introduced by a sentence that says why it is there
        if cell["cell_type"] == "code":
            assert index > 0 and cells[index - 1]["cell_type"] == "markdown", (
                f"{path.name}: code cell {index} has no sentence before it:\n{''.join(cell['source'])[:200]}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_the_setup_cell_is_a_few_lines_a_teacher_can_read_aloud(path):
    source = "".join(code_cells(path)[0]["source"])
    non_blank = [line for line in source.splitlines() if line.strip()]
    code = [line for line in non_blank if not line.strip().startswith("#")]
    assert len(code) <= SETUP_CODE_LINES and len(non_blank) <= SETUP_NON_BLANK_LINES, source
    first_cell = "".join(code_cells(NOTEBOOKS[0])[0]["source"])
    backend_line = re.compile(r"^course\.setup\(.*$", re.MULTILINE)
    assert backend_line.sub("", source) == backend_line.sub("", first_cell), "the same cell in every notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_committed_outputs_are_clean(path):
    notebook = load(path)
    code = code_cells(path)
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "committed without one full run"
    assert sum(bool(c["outputs"]) for c in code) >= len(code) / 2, "committed without outputs"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], "an error output is committed"
    texts = "".join(shown_text(c) for c in code)
    assert "quick mode (AE_QUICK=1)" not in texts, "commit the full-mode run, not the quick one"
    assert "Traceback" not in texts and "Kernel is running over TCP" not in texts
    for cell in code:
        assert "NBVAL_" not in "".join(cell["source"]), "nbval markers belong in cell tags, not in the code"
        assert "inspect.getsource" not in "".join(cell["source"]), "write the code, don't print it"
    assert notebook["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_no_output_states_a_series_goal_or_a_drift_check(path):
    for cell in code_cells(path):
        found = MACHINERY.search(shown_text(cell) + "\n" + "".join(cell["source"]))
        assert not found, f"{path.name} shows the project's own machinery to learners: {found.group(0)!r}"
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "markdown":
            found = MACHINERY.search("".join(cell["source"]))
            assert not found, f"{path.name}'s prose states a series goal: {found.group(0)!r}"


def test_the_machinery_check_catches_what_it_should():
    caught = [
        "test MSE 0.00457 (target 0.0070 or less: met)",
        "training time 40.7 s (budget 120 s: not met)",
        "same architecture as models.build_dense_autoencoder(): True",
        "The series aimed for at least 20 dB",
    ]
    missed = ["the targets are the clean images", "within a 32-byte budget the convolutional model is best"]
    assert all(MACHINERY.search(text) for text in caught)
    assert not any(MACHINERY.search(text) for text in missed)


def execution_span(path: Path) -> tuple[str, str]:
    """The first and last execution timestamps of a committed notebook's code cells."""
    times = [
        stamp
        for cell in code_cells(path)
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
    for index in range(1, len(NOTEBOOKS)):
        assert spans[index][0] > spans[index - 1][1], (
            f"{NOTEBOOKS[index].name} was executed before {NOTEBOOKS[index - 1].name} had finished"
        )


def code_source(path: Path) -> str:
    return "\n".join("".join(cell["source"]) for cell in code_cells(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_colab_badge_and_setup_cell_use_the_one_address(path):
    address = repository_address()
    sources = ["".join(cell["source"]) for cell in load(path)["cells"]]
    badges = re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"']+", "\n".join(sources))
    owner_and_name = address.removeprefix("https://github.com/")
    assert badges == [f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/{path.name}"]
    setup = "".join(code_cells(path)[0]["source"])
    assert re.findall(r'%pip install --quiet "ae-mnist-utils @ git\+([^"]+)"', setup) == [address]
    other_addresses = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", "\n".join(sources))) - {address}
    assert not other_addresses, f"{path.name} names another repository: {sorted(other_addresses)}"
