"""Promises about the repository as a whole: the pinned stacks agree, and the README shows the two commands."""

from __future__ import annotations

import re

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
