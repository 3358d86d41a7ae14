"""The benchmark's quick mode produces a well-formed table (no timing is asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_table(tmp_path):
    env = {**os.environ, "AE_QUICK": "1", "AE_OUTPUT_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "training_speed.py"), "--ablations", "bf16"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "quick" / "benchmarks" / "training_speed.md").read_text()
    assert table in done.stdout
    assert "CPU:" in table and "TensorFlow/Keras 3." in table
    recipe_rows = [line for line in table.splitlines() if line.startswith("| (")]
    assert [row.split("|")[1].strip()[:3] for row in recipe_rows[:3]] == ["(a)", "(b)", "(c)"]
    for row in recipe_rows[:3]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == "2", "quick mode trains two epochs"
        assert 0 < float(cells[2]) < 0.3, "a test MSE on pixels in [0, 1]"
        assert float(cells[4].replace(",", "")) > 0
    ratio_rows = [
        line for line in table.splitlines() if line.startswith("| (b) blog") or line.startswith("| (c) blog")
    ]
    assert len(ratio_rows) == 2
    assert re.search(r"\| (\d+\.\dx|not reached by \(a\)) \|$", ratio_rows[1])
    assert "mixed_bfloat16" in table and "as is, same length" in table


def test_unknown_ablation_is_refused():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "training_speed.py"), "--ablations", "turbo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "unknown ablations ['turbo']" in done.stderr
