"""The prose teaches what the committed run printed: every measured number in it is one the code printed,
and every notebook is one lecture long.

A number with a decimal point or a % sign in a markdown cell (outside code) must appear, as the same value,
in that notebook's printed outputs or in its code; hints and solutions count too. A number that is a
definition rather than a measurement ("an AUC of 0.5 is guessing") is listed in DEFINITIONS.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from tests.conftest import NOTEBOOKS, notebook_id

MAX_PROSE_WORDS = 1500
PROSE_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+|\d+(?=\s?%))(?![\w.]*\d)")
ANY_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
# Numbers that define something rather than report a measurement, per notebook.
DEFINITIONS: dict[str, set[str]] = {
    "02": {"0.5"},  # the value of a sigmoid at 0
    "05": {"0.5"},  # the midpoint t = 0.5 of an interpolation
}


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def prose(markdown: str) -> str:
    """Markdown without its code: fenced blocks and inline code spans."""
    return re.sub(r"`[^`\n]*`", " ", re.sub(r"```.*?```", " ", markdown, flags=re.S))


def code_blocks(markdown: str) -> str:
    return "\n".join(re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.S) + re.findall(r"`([^`\n]*)`", markdown))


def printed(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for kind in ("text/plain", "text/markdown", "text/html"):
            parts.append("".join(output.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def values(text: str) -> set[Decimal]:
    found = set()
    for token in ANY_NUMBER.findall(text.replace(",", "")):
        try:
            found.add(Decimal(token).normalize())
        except InvalidOperation:
            continue
    return found


def unprinted_numbers(path: Path) -> list[str]:
    """The numbers of the prose that appear nowhere in the notebook's outputs or code."""
    notebook = cells(path)
    markdown = ["".join(cell["source"]) for cell in notebook if cell["cell_type"] == "markdown"]
    haystack = "\n".join(
        "".join(cell["source"]) + "\n" + printed(cell) for cell in notebook if cell["cell_type"] == "code"
    ) + "\n".join(code_blocks(text) for text in markdown)
    known = values(haystack)
    allowed = DEFINITIONS.get(path.name[:2], set())
    missing = []
    for text in markdown:
        for number in PROSE_NUMBER.findall(prose(text).replace(",", "")):
            if number not in allowed and Decimal(number).normalize() not in known:
                missing.append(number)
    return missing


def prose_words(path: Path) -> int:
    """Words of prose outside the exercises: every markdown cell but the Exercises section, without its code."""
    counted, skipping = [], False
    for cell in cells(path):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        if text.lstrip().startswith("## Exercises"):
            skipping = True
        elif text.lstrip().startswith("## Summary"):
            skipping = False
        if not skipping:  # prose: without code blocks, inline code, HTML tags and link targets
            text = re.sub(r"```.*?```|`[^`\n]*`|<[^>]+>|\]\([^)]*\)", " ", text, flags=re.S)
            counted.append(text)
    return len(re.findall(r"\w[\w'’-]*", " ".join(counted)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_every_number_in_the_prose_was_printed(path):
    missing = unprinted_numbers(path)
    assert not missing, f"{path.name}: numbers in the prose that no output or code shows: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_every_notebook_is_one_lecture_long(path):
    words = prose_words(path)
    assert words <= MAX_PROSE_WORDS, f"{path.name} has {words} words of prose outside its exercises"


def test_the_number_check_finds_a_typed_measurement(tmp_path):
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "source": "print(0.00457)",
                "outputs": [{"output_type": "stream", "text": "0.00457\n"}],
            },
            {
                "cell_type": "markdown",
                "source": "The error is 0.00457, PSNR 24.4 dB, 53.5% of pixels; `x = 0.25` is code.",
            },
        ]
    }
    path = tmp_path / "99_example.ipynb"
    path.write_text(json.dumps(notebook))
    assert unprinted_numbers(path) == ["24.4", "53.5"]
