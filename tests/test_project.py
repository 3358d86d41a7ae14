"""Project-level promises: pinned stacks agree, the two commands are documented, notebooks follow the house style."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def pins(text: str, pattern: str) -> dict[str, str]:
    return {
        name.lower().replace("_", "-"): version for name, version in re.findall(pattern, text, re.MULTILINE)
    }


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    notebook = json.loads(path.read_text())
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
    if "<details><summary>Solution</summary>" in "\n".join(markdown):
        # The newer form: exercises with hints and worked solutions, before the summary.
        assert lines.index("## Exercises") < lines.index("## Summary")
        exercises = re.findall(r"^\*\*Exercise \d+\.\*\*", "\n".join(markdown), re.MULTILINE)
        for tag in ("<details><summary>Hint</summary>", "<details><summary>Solution</summary>"):
            assert "\n".join(markdown).count(tag) == len(exercises) > 0, tag
    else:
        assert lines.index("## Summary") < lines.index("## Exercises")
    assert cells[0]["cell_type"] == "markdown" and "colab.research.google.com" in "".join(cells[0]["source"])
    is_last = path == NOTEBOOKS[-1]
    assert is_last or any("**Next:**" in text for text in markdown)
    # Committed with full-mode outputs and without errors.
    assert all(c.get("outputs") is not None for c in code)
    assert sum(bool(c["outputs"]) for c in code) >= len(code) - 1, "committed without outputs"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    texts = "".join("".join(o.get("text", "")) for o in outputs)
    assert "Quick mode (AE_QUICK=1)" not in texts, "commit the full-mode run, not the quick one"
