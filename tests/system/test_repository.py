"""Promises about the repository as a whole: the pinned stacks agree, the README shows the two commands, and
pytest's workers keep the notebooks together."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import worker_scope
from tests.conftest import NOTEBOOKS, ROOT


def pins(text: str, pattern: str) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in re.findall(pattern, text, re.MULTILINE)}


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


def test_readme_names_only_the_one_repository():
    from tests.notebooks.test_structure import repository_address

    address = repository_address()
    for other in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", (ROOT / "README.md").read_text()):
        assert other == address, f"README names another repository: {other}"


def test_nothing_names_a_tracker_issue():
    """Code, tests, notebooks and docs say what a thing does, not which issue asked for it."""
    pattern = re.compile(r"\b" + "issues?" + r" #?\d+\b", re.IGNORECASE)
    files = [
        *(
            path
            for folder in ("utils", "scripts", "benchmarks", "tests", "docs")
            for path in (ROOT / folder).rglob("*")
        ),
        *NOTEBOOKS,
        *ROOT.glob("*.md"),
        ROOT / "Makefile",
    ]
    named = [
        f"{path.relative_to(ROOT)}: {match.group()}"
        for path in files
        if path.is_file() and path.suffix in {".py", ".md", ".ipynb", ".txt", ""} and "__pycache__" not in path.parts
        for match in pattern.finditer(path.read_text(errors="ignore"))
    ]
    assert not named, f"tracker issues named: {named}"


def test_no_block_of_six_lines_is_repeated_in_utils():
    """One piece of code for one job: no six code lines (blank lines and comments aside) appear twice."""
    first_seen, repeats = {}, []
    for path in sorted((ROOT / "utils").glob("*.py")):
        numbered = enumerate(path.read_text().splitlines(), 1)
        code = [
            (number, line.strip()) for number, line in numbered if line.strip() and not line.strip().startswith("#")
        ]
        for start in range(len(code) - 5):
            block = tuple(text for _, text in code[start : start + 6])
            if sum(len(text) > 12 for text in block) < 3:  # closing brackets and `else:` say nothing
                continue
            place = (path.name, code[start][0])
            earlier = first_seen.setdefault(block, place)
            if earlier[0] != path.name or place[1] - earlier[1] >= 6:
                repeats.append(f"{earlier[0]}:{earlier[1]} and {path.name}:{place[1]}")
    assert not repeats, f"blocks of six lines repeated in utils: {repeats}"


@pytest.mark.parametrize(
    ("nodeid", "scope"),
    [
        ("notebooks/01_data.ipynb::Cell 0", "notebooks"),
        ("notebooks/10_variational.ipynb::Cell 7", "notebooks"),
        ("tests/unit/test_codec.py::test_crc8[one byte]", "tests/unit/test_codec.py"),
        ("tests/system/test_site.py::test_site_builds", "tests/system/test_site.py"),
    ],
)
def test_a_worker_takes_all_the_notebooks_or_one_whole_test_file(nodeid, scope):
    assert worker_scope(nodeid) == scope


def test_a_notebook_run_on_workers_keeps_its_cells_on_one_worker(tmp_path):
    """`pytest -n 2 notebooks/...` on its own (without tests/) still runs a notebook's cells in one kernel, in order:
    split across workers, most of its cells fail with a NameError (10 of 01's 12 did)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "AE_"))}
    env |= {"AE_QUICK": "1", "AE_OUTPUT_DIR": str(tmp_path / "outputs")}
    notebook = "notebooks/01_data.ipynb"
    command = [sys.executable, "-m", "pytest", "-n", "2", "--nbval-lax", "-v", "-p", "no:cacheprovider", notebook]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert "scheduling tests via ByFile" in run.stdout, run.stdout[-3000:]
    workers = set(re.findall(r"^\[(gw\d+)\] .*PASSED", run.stdout, re.MULTILINE))
    assert run.returncode == 0 and len(workers) == 1, run.stdout[-3000:]
