"""scripts/multihost_train.py: a real 2-process JAX job on 127.0.0.1 that ends by itself (notebook 12)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "multihost_train.py"


def run_script(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "AE_QUICK": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_two_processes_train_as_one_job(tmp_path):
    report_path = tmp_path / "report.json"
    done = run_script("--report", str(report_path))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["exit_codes"] == [0, 0]
    results = report["results"]
    assert [result["process_id"] for result in results] == [0, 1]
    for result in results:
        assert result["processes"] == 2
        assert len(result["local_devices"]) == 1, "one CPU device per process"
        assert len(result["global_devices"]) == 2, "each process sees the job's two devices"
        assert result["global_batch"] == 256
        loss = result["history"]["loss"]
        assert len(loss) == 2, "quick mode trains two epochs"
        assert all(math.isfinite(value) for value in loss + result["history"]["val_loss"])
        assert loss[-1] < loss[0], "the loss fell"
    assert results[0]["shard_images"] == results[1]["shard_images"] > 0
    # The two processes report the global loss, so they agree on every epoch, not only the last.
    assert results[0]["history"] == results[1]["history"]
    lines = done.stdout.splitlines()
    assert sum(line.startswith(("process 0/2: finished", "process 1/2: finished")) for line in lines) == 2
    assert lines[-1].startswith("all 2 processes finished and agree on the final loss")


def test_a_job_that_runs_out_of_time_is_stopped(tmp_path):
    report_path = tmp_path / "report.json"
    # Far too little time to even start JAX: the launcher must stop both workers and say so.
    done = run_script("--timeout", "1", "--report", str(report_path), timeout=120)
    assert done.returncode == 124, done.stdout + done.stderr[-3000:]
    assert "timeout: the job did not finish within 1 s" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["results"] == [None, None]
    assert all(code is not None for code in report["exit_codes"]), "every worker was stopped"
    assert "process 0/2: timed out and was stopped" in done.stdout
    assert "process 1/2: timed out and was stopped" in done.stdout


def test_bad_arguments_are_refused():
    done = run_script("--processes", "0", timeout=60)
    assert done.returncode == 2
    assert "--processes must be a positive integer, got 0" in done.stderr
