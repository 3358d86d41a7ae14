"""`make setup`'s apt step waits for another apt's lock, and the main job's kernels print no TCP warning."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import threading
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT, needs_root
from utils import data


def run_fashion_setup(tmp_path: Path, lock_timeout: int, release_after: float | None) -> subprocess.CompletedProcess:
    """``make fashion-data`` against a private copy of dpkg's state, whose lock another "apt" holds."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("this test runs `make setup`'s apt step: it needs root and apt-get, as CI has")
    if not data.FASHION_DEBIAN_DIR.is_dir():
        pytest.fail("dataset-fashion-mnist must be installed (make setup) so that apt has nothing to download")
    admin = tmp_path / "dpkg"
    admin.mkdir()
    shutil.copyfile("/var/lib/dpkg/status", admin / "status")
    lock = os.open(admin / "lock-frontend", os.O_RDWR | os.O_CREAT)
    fcntl.lockf(lock, fcntl.LOCK_EX)  # what unattended-upgrades does at boot
    releaser = None
    if release_after is not None:
        releaser = threading.Timer(release_after, fcntl.lockf, (lock, fcntl.LOCK_UN))
        releaser.start()
    try:
        return subprocess.run(
            [
                "make",
                "-s",
                "--no-print-directory",
                "fashion-data",
                f"FASHION_FILE={tmp_path / 'not-installed.gz'}",
                f"APT_GET=apt-get -o Dir::State::status={admin / 'status'}",
                f"APT_LOCK_TIMEOUT={lock_timeout}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        if releaser is not None:
            releaser.cancel()
        os.close(lock)


@needs_root("apt-get installs packages")
def test_setup_waits_for_the_apt_lock(tmp_path):
    done = run_fashion_setup(tmp_path, lock_timeout=120, release_after=2.0)
    assert done.returncode == 0, done.stderr
    assert "==> installing Debian's dataset-fashion-mnist" in done.stdout
    assert "note:" not in done.stdout, done.stdout
    assert (tmp_path / "dpkg" / "lock").exists(), "apt ran against the private state and got its lock in the end"


@needs_root("apt-get installs packages")
def test_setup_reports_an_apt_lock_that_stays_held(tmp_path):
    done = run_fashion_setup(tmp_path, lock_timeout=1, release_after=None)
    assert done.returncode == 0, done.stderr
    assert "note: apt was still busy after 1 s, so dataset-fashion-mnist was not installed" in done.stdout
    assert f"{tmp_path / 'dpkg' / 'lock-frontend'}" in done.stdout, "apt's own reason is shown"
    assert "run 'make setup' again" in done.stdout


def test_run_series_kernels_use_ipc_and_print_no_tcp_warning(tmp_path, capfd):
    spec = importlib.util.spec_from_file_location("run_series", ROOT / "scripts" / "run_series.py")
    run_series = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_series)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)"
        )
    ]
    source = tmp_path / "00_transport.ipynb"
    nbformat.write(notebook, source)
    run_series.execute(source, tmp_path / "executed.ipynb", timeout=120)
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "ipc"
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out
    assert "[IPKernelApp] WARNING" not in captured.err + captured.out
