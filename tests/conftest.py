"""What the tests share: the repository's paths, the real MNIST loaded once, an offline data environment,
the root-only marker, and one way to execute a notebook in a fresh kernel."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# `make test` sets this, so that a test that needs root fails there instead of being skipped.
REQUIRE_ROOT_ENV = "AE_REQUIRE_ROOT_TESTS"


def notebook_id(path: Path) -> str:
    return path.stem


def needs_root(reason: str):
    """Mark a test that only root can run (mounts, apt): skipped in `make check`, required in `make test`."""
    if os.geteuid() == 0 or os.environ.get(REQUIRE_ROOT_ENV) == "1":
        return lambda test: test
    return pytest.mark.skip(reason=f"needs root ({reason}); `make test` runs it as root")


def execute_notebook(
    notebook: nbformat.NotebookNode,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT / "notebooks",
    timeout: int = 900,
    **client_options,
) -> nbformat.NotebookNode:
    """Run ``notebook`` top to bottom in a fresh kernel over IPC (no TCP warning); raises CellExecutionError."""
    sockets = Path(tempfile.mkdtemp(prefix="ae-test-kernel-"))  # short: Unix socket paths are limited
    options = {"kernel_name": "python3", **client_options}
    if "km" not in options:
        options["config"] = Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}})
    client = NotebookClient(notebook, timeout=timeout, resources={"metadata": {"path": str(cwd)}}, **options)
    try:
        client.execute(env={**os.environ, **(env or {})})
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return notebook


def outputs_text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed or displayed as text, tracebacks included."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(str(output.get("data", {}).get("text/plain", "")))
        elif output.output_type == "error":
            parts.append("\n".join(output.traceback))
    return "\n".join(parts)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST through the normal source chain (the project cache after `make setup`)."""
    from utils import data

    return data.load_mnist()


@pytest.fixture
def no_network(monkeypatch):
    """Make every outgoing connection fail at once, as it would on a machine with no internet."""

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def isolated_sources(tmp_path, monkeypatch, no_network):
    """Empty Keras home and project cache under tmp_path, no path override, network blocked."""
    from utils import data

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("AE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(data.MNIST_PATH_ENV, raising=False)
    monkeypatch.delenv(data.MNIST_MIRROR_ENV, raising=False)
    return tmp_path


@pytest.fixture
def quick_outputs(tmp_path, monkeypatch):
    """Quick mode, with every output (models, figures, metrics) going to a folder of this test's own."""
    monkeypatch.setenv("AE_QUICK", "1")
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path / "outputs"))
    return tmp_path / "outputs" / "quick"
