"""The worked solutions of the notebooks' exercises run: after all the cells, in quick mode, on the other backend.

A solution is every ```python block inside a ``<details><summary>Solution</summary>`` block. Running them on
the backend that is not the notebook's default also checks that the notebook runs on both.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTION = re.compile(r"<details><summary>Solution</summary>(.*?)</details>", re.DOTALL)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
OTHER_BACKEND = {"jax": "tensorflow", "tensorflow": "jax"}


def solutions(notebook: nbformat.NotebookNode) -> list[str]:
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    return [code for block in SOLUTION.findall(markdown) for code in PYTHON_BLOCK.findall(block)]


def default_backend(notebook: nbformat.NotebookNode) -> str:
    setup = next(cell.source for cell in notebook.cells if cell.cell_type == "code")
    return re.search(r'os\.environ\.setdefault\("KERAS_BACKEND", "(\w+)"\)', setup).group(1)


WITH_SOLUTIONS = [path for path in NOTEBOOKS if solutions(nbformat.read(path, as_version=4))]


def test_solution_blocks_are_found():
    sample = "<details><summary>Solution</summary>\n\n```python\nprint(1)\n```\nWhy.\n\n</details>"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(sample)])
    assert solutions(notebook) == ["print(1)\n"]


@pytest.mark.parametrize("path", WITH_SOLUTIONS, ids=[path.stem for path in WITH_SOLUTIONS])
def test_solutions_run_on_the_other_backend(path, tmp_path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    codes = solutions(notebook)
    backend = OTHER_BACKEND[default_backend(notebook)]
    monkeypatch.setenv("KERAS_BACKEND", backend)
    monkeypatch.setenv("AE_QUICK", "1")
    monkeypatch.setenv("AE_HEADLESS", "1")
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    first_solution = len(notebook.cells)
    notebook.cells += [new_code_cell(code) for code in codes]
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()  # raises CellExecutionError, naming the cell, if any cell fails
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert f"on the {backend} backend" in "".join(output.get("text", "") for output in setup.outputs)
    for cell in notebook.cells[first_solution:]:
        printed = "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")
        assert printed.strip(), f"a solution printed nothing:\n{cell.source}"
