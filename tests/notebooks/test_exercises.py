"""Every exercise has a hint and a hidden solution, and every solution runs.

Each notebook is executed with its solutions appended after its last cell, in quick mode, on the Keras
backend that is *not* its default. So this one run also proves that every notebook works on both
backends: nbval (``make test``) runs each notebook on its default backend.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tests.conftest import NOTEBOOKS, execute_notebook, notebook_id

EXERCISE = re.compile(r"^\*\*Exercise (\d+)\.\*\*", re.M)
HINT = re.compile(r"<details><summary>Hint</summary>\s*\n(.+?)\n\s*</details>", re.S)
SOLUTION = re.compile(r"<details><summary>Solution</summary>\s*\n\s*```python\n(.+?)\n```(.*?)</details>", re.S)
DEFAULT_BACKEND = re.compile(r'course\.setup\(backend="(\w+)"')


def markdown_cells(path: Path) -> list[str]:
    return [
        "".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "markdown"
    ]


def exercises_by_cell(path: Path) -> list[tuple[int, str]]:
    """Every exercise as (index of its markdown cell, its text); a cell may hold several exercises."""
    found = []
    for index, text in enumerate(markdown_cells(path)):
        starts = [match.start() for match in EXERCISE.finditer(text)]
        ends = [*starts[1:], len(text)] if starts else []
        found += [(index, text[start:end]) for start, end in zip(starts, ends, strict=True)]
    return found


def exercises(path: Path) -> list[str]:
    return [text for _, text in exercises_by_cell(path)]


def default_backend(path: Path) -> str:
    notebook = json.loads(path.read_text())
    setup = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    found = DEFAULT_BACKEND.search("".join(setup["source"]))
    assert found, f"{path.name}: the Setup cell sets no default KERAS_BACKEND"
    return found.group(1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_every_exercise_has_a_hint_and_a_hidden_solution(path):
    texts = markdown_cells(path)
    found = exercises(path)
    assert len(found) >= 2, f"{path.name} has {len(found)} exercises"
    numbers = [int(EXERCISE.search(text).group(1)) for text in found]
    assert numbers == list(range(1, len(found) + 1)), numbers
    for text in found:
        assert HINT.search(text), f"{path.name}: an exercise without a hint:\n{text[:200]}"
        solution = SOLUTION.search(text)
        assert solution and solution.group(1).strip(), f"{path.name}: an exercise without a solution:\n{text[:200]}"
        assert text.index("<summary>Hint") < text.index("<summary>Solution"), "the hint comes before the solution"
    headings = [line for text in texts for line in text.splitlines() if line.startswith("## ")]
    cells = [index for index, _ in exercises_by_cell(path)]
    exercises_at = next(i for i, text in enumerate(texts) if text.strip().startswith("## Exercises"))
    summary_at = next(i for i, text in enumerate(texts) if text.strip().startswith("## Summary"))
    assert exercises_at <= min(cells), "exercises sit under '## Exercises'"
    assert max(cells) < summary_at, "exercises come before the Summary"
    assert headings[-1] == "## Summary", "the Summary (and the link to the next notebook) close the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_every_notebook_has_a_predict_then_run_question(path):
    assert any("**Predict, then run.**" in text for text in markdown_cells(path)), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_solutions_run_on_the_other_backend(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    solutions = [SOLUTION.search(text).group(1) for text in exercises(path)]
    for number, source in enumerate(solutions, start=1):
        cell = nbformat.v4.new_code_cell(f"# Exercise {number}, solution\n{source}")
        cell.metadata["tags"] = ["solution"]
        notebook.cells.append(cell)
    other = {"jax": "tensorflow", "tensorflow": "jax"}[default_backend(path)]
    env = {"KERAS_BACKEND": other, "AE_QUICK": "1", "AE_HEADLESS": "1", "AE_OUTPUT_DIR": str(tmp_path)}
    try:
        execute_notebook(notebook, env=env, cwd=path.parent)
    except CellExecutionError as error:
        pytest.fail(f"{path.name} on {other} with its solutions appended failed:\n{str(error)[-3000:]}")
    setup_cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
    setup_text = "".join(output.get("text", "") for output in setup_cell.outputs)
    assert f"on the {other} backend" in setup_text, setup_text
    for cell in notebook.cells[-len(solutions) :]:
        assert not [o for o in cell.outputs if o.output_type == "error"]
