"""Write the students' copy of the notebooks: the worked solutions taken out, the hints and outputs kept.

    make student                                # into student/ (git-ignored)
    python scripts/make_student.py --out DIR

For teachers who hand out the exercises as assignments. Every notebooks/NN_*.ipynb is copied with each
``<details><summary>Solution</summary> ... </details>`` block removed; everything else stays as committed,
outputs included. The Colab badge goes too: it opens the repository's notebook, solutions and all; the copy
says how to open it instead (JupyterLab, or Colab's File > Upload notebook; its Setup cell installs the
series' helpers there as usual).

The Setup cell finds utils/ with ``sys.path.insert(0, "..")``: in a folder beside notebooks/, such as the
default student/, that holds as it is; in any other folder the copy's Setup cell points at this checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "student"
SOLUTION = re.compile(r"\n*<details>\s*<summary>\s*Solution\s*</summary>.*?</details>[ \t]*", re.S)
SOLUTION_START = re.compile(r"<summary>\s*Solution\s*</summary>")
BADGE = re.compile(r"\[!\[[^\]]*\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\([^)\s]+\)")
STUDENT_NOTE = (
    "*Student copy: the worked solutions are left out. Open it in JupyterLab, or upload it to Google Colab "
    "(File → Upload notebook); its first cell installs what it needs there.*"
)
SETUP_PATH = 'sys.path.insert(0, "..")'


def without_solutions(text: str, where: str) -> tuple[str, int]:
    """``text`` with every solution block removed, and how many there were."""
    blocks = SOLUTION.findall(text)
    if len(blocks) != len(SOLUTION_START.findall(text)) or any(block.count("<details") > 1 for block in blocks):
        raise SystemExit(f"{where}: a Solution block is not closed, or holds another <details> block.")
    return (SOLUTION.sub("", text).rstrip() if blocks else text), len(blocks)


def student_copy(path: Path, out: Path) -> tuple[nbformat.NotebookNode, int]:
    """The notebook at ``path`` as a student gets it in folder ``out``, and how many solutions left it."""
    notebook = nbformat.read(path, as_version=4)
    removed = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            cell.source, count = without_solutions(cell.source, f"{path.name}, cell {index}")
            removed += count
    notebook.cells[0].source = BADGE.sub(STUDENT_NOTE, notebook.cells[0].source, count=1)
    out = out.resolve()
    root = os.path.relpath(ROOT, out) if out.is_relative_to(ROOT) else str(ROOT)
    if root != "..":
        for cell in notebook.cells:
            if cell.cell_type == "code" and SETUP_PATH in cell.source:
                cell.source = cell.source.replace(SETUP_PATH, f"sys.path.insert(0, {root!r})")
    return notebook, removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the folder to write the copies into")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if out == (ROOT / "notebooks").resolve():
        raise SystemExit("--out must not be notebooks/: the copies would overwrite the committed notebooks.")
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    total = 0
    for path in paths:
        notebook, removed = student_copy(path, out)
        nbformat.write(notebook, out / path.name)
        total += removed
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"Wrote {len(paths)} notebooks to {shown}/ without their {total} worked solutions (hints and outputs kept).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
