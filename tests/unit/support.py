"""Helpers that several unit-test files share: child processes that import this worktree's utils."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import ROOT


def child_env(**values: str | Path) -> dict[str, str]:
    """The environment of a child process that imports this worktree's utils, with no AE_* overrides."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AE_")}
    env.pop("KERAS_HOME", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update({key: str(value) for key, value in values.items()})
    return env


def one_line(text: str) -> str:
    """The only line of ``text``; fails when there are none or several."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]
