"""`make student`: a copy of the notebooks without the worked solutions, hints and outputs kept, that still runs.

The test runs scripts/make_student.py as `make student` does, into student/ beside notebooks/, checks every
copy against its notebook, and executes a few copies in quick mode from where they were written.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import NOTEBOOKS, ROOT, execute_notebook, notebook_id

STUDENT = ROOT / "student"
RUN_IN_QUICK_MODE = ("01_data.ipynb", "02_model.ipynb", "10_variational.ipynb")
SOLUTION = re.compile(r"<summary>\s*Solution\s*</summary>", re.I)
HINT = re.compile(r"<summary>\s*Hint\s*</summary>", re.I)
SOLUTION_BLOCK = re.compile(r"<details>\s*<summary>\s*Solution\s*</summary>(.*?)</details>", re.S)
SETUP_PATH = re.compile(r"sys\.path\.insert\(0, ([\"'])(.+?)\1\)")


def make_student(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_student.py"), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def student() -> Path:
    printed = make_student()
    assert "student/" in printed
    return STUDENT


def setup_root(copy: nbformat.NotebookNode, folder: Path) -> Path:
    """The folder the copy's Setup cell puts first on sys.path, seen from the copy's own folder."""
    for cell in copy.cells:
        match = SETUP_PATH.search(cell.source) if cell.cell_type == "code" else None
        if match:
            return (folder / match.group(2)).resolve()
    raise AssertionError("no sys.path.insert in the Setup cell")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_the_copy_has_no_solution_and_keeps_the_rest(student, path):
    original = nbformat.read(path, as_version=4)
    copy = nbformat.read(student / path.name, as_version=4)
    text = json.dumps([cell.source for cell in copy.cells])
    assert not SOLUTION.search(text), f"{path.name}: a solution is left in the student copy"
    copied_markdown = "\n".join(cell.source for cell in copy.cells if cell.cell_type == "markdown")
    for cell in original.cells:  # nor any solution's code or explanation
        for block in SOLUTION_BLOCK.findall(cell.source):
            assert block.strip() not in copied_markdown, f"{path.name}: a solution's text is left"
    assert len(HINT.findall(text)) == sum(len(HINT.findall(cell.source)) for cell in original.cells)
    assert len(copy.cells) == len(original.cells)
    for index, (before, after) in enumerate(zip(original.cells, copy.cells, strict=True)):
        assert before.cell_type == after.cell_type
        if before.cell_type == "code":
            assert after.outputs == before.outputs, f"{path.name}: the outputs of cell {index} changed"
            assert after.source == before.source
        elif index and not SOLUTION.search(before.source):
            assert after.source == before.source, f"{path.name}: markdown cell {index} changed"
    assert "colab.research.google.com" not in copy.cells[0].source, "the badge would open the copy with solutions"
    assert (setup_root(copy, student) / "utils" / "__init__.py").is_file(), "the Setup cell would not find utils/"


@pytest.mark.parametrize("name", RUN_IN_QUICK_MODE)
def test_the_copy_runs_in_quick_mode_from_where_it_is(student, name, tmp_path):
    copy = nbformat.read(student / name, as_version=4)
    environment = {"AE_QUICK": "1", "AE_HEADLESS": "1", "AE_OUTPUT_DIR": str(tmp_path / "outputs")}
    execute_notebook(copy, env=environment, cwd=student)
    errors = [
        output
        for cell in copy.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors


def test_a_copy_elsewhere_points_its_setup_cell_at_this_checkout(tmp_path):
    make_student("--out", str(tmp_path / "handout"))
    copy = nbformat.read(tmp_path / "handout" / NOTEBOOKS[0].name, as_version=4)
    assert setup_root(copy, tmp_path / "handout") == ROOT
    assert not SOLUTION.search(json.dumps([cell.source for cell in copy.cells]))
