"""The Setup cell's one call: a wrong backend is one line that says what to do, and TensorFlow stays out elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tests.conftest import NOTEBOOKS, ROOT, execute_notebook
from utils import course

# (KERAS_BACKEND as set, what the one line must say after "SetupError: KERAS_BACKEND is '...'")
WRONG_BACKENDS = [
    ("torch", ", but torch is not installed here (installed: jax, tensorflow). Install it ("),
    ("tensorflw", ", which is not a Keras backend: set it to one of jax, tensorflow, torch (installed here: "),
]


@pytest.fixture
def fresh_kernel(monkeypatch):
    """This process as a fresh kernel sees it: Keras not imported yet, so $KERAS_BACKEND decides."""
    monkeypatch.delitem(sys.modules, "keras", raising=False)


@pytest.mark.parametrize(("backend", "explanation"), WRONG_BACKENDS, ids=[b for b, _ in WRONG_BACKENDS])
def test_setup_refuses_a_wrong_backend_in_one_line(fresh_kernel, monkeypatch, capsys, backend, explanation):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    with pytest.raises(course.SetupError) as raised:
        course.setup(backend="jax")
    rendered = raised.value._render_traceback_()
    assert len(rendered) == 1 and "\n" not in rendered[0], rendered
    line = rendered[0]
    assert line.startswith(f"SetupError: KERAS_BACKEND is {backend!r}{explanation}"), line
    assert "jax, tensorflow" in line, "it names the backends installed here"
    assert "unset" in line and line.endswith("then restart the kernel."), "it says how to fix it"
    assert os.environ["KERAS_BACKEND"] == backend and "keras" not in sys.modules, "nothing was started"
    assert capsys.readouterr().out == ""


def test_installed_backends_are_those_this_python_can_import():
    installed = course.installed_backends()
    assert {"jax", "tensorflow"} <= set(installed) and "torch" not in installed, "the test machine's stack"
    course.check_backend("jax")
    course.check_backend("tensorflow")


def setup_cell(path=NOTEBOOKS[0]) -> str:
    notebook = nbformat.read(path, as_version=4)
    return next(cell for cell in notebook.cells if cell.cell_type == "code").source


@pytest.mark.parametrize(("backend", "explanation"), WRONG_BACKENDS, ids=[b for b, _ in WRONG_BACKENDS])
def test_the_setup_cell_shows_a_wrong_backend_as_one_line_in_jupyter(backend, explanation):
    """Notebook 01's Setup cell in a real kernel: the error is one line, and the cell after it never runs."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(setup_cell()), nbformat.v4.new_code_cell('print("the next cell ran")')]
    )
    with pytest.raises(CellExecutionError) as raised:
        execute_notebook(notebook, env={"KERAS_BACKEND": backend}, cwd=ROOT / "notebooks", timeout=120)
    assert raised.value.ename == "SetupError"
    setup, after = notebook.cells
    errors = [output for output in setup.outputs if output.output_type == "error"]
    assert len(errors) == 1 and [output.output_type for output in setup.outputs] == ["error"], setup.outputs
    traceback = errors[0].traceback
    assert len(traceback) == 1 and "\n" not in traceback[0], traceback
    assert traceback[0].startswith(f"SetupError: KERAS_BACKEND is {backend!r}{explanation}"), traceback[0]
    assert after.execution_count is None and after.outputs == [], "the cell after the Setup cell did not run"


PROBE = """
import importlib.util, json, os, sys
from utils import course
course.setup(backend="jax")
import keras
keras.utils.set_random_seed(1)  # Keras would import TensorFlow here just to seed it
try:
    import tensorflow
    refused = None
except ModuleNotFoundError as error:
    refused = str(error)
print(json.dumps({
    "KERAS_BACKEND": os.environ.get("KERAS_BACKEND"),
    "backend": keras.backend.backend(),
    "tensorflow loaded": sys.modules.get("tensorflow") is not None,
    "lookup": importlib.util.find_spec("tensorflow") is not None,  # PyTorch's compiler asks like this
    "refused": refused,
}))
"""


def test_tensorflow_stays_out_on_jax():
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, *_, last = done.stdout.strip().splitlines()
    assert first.startswith("Keras ") and " on the jax backend, NumPy " in first, "setup says what runs"
    result = json.loads(last)
    assert result["KERAS_BACKEND"] == "jax" and result["backend"] == "jax", "the notebook's backend by default"
    assert not result["tensorflow loaded"]
    assert not result["lookup"], "a lookup answers 'not there' (and does not raise)"
    assert result["refused"] and "tensorflow" in result["refused"], "import tensorflow raises ModuleNotFoundError"


def test_setup_on_tensorflow_starts_it_without_its_start_up_notes():
    env = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run(
        [sys.executable, "-c", "from utils import course; course.setup(backend='tensorflow')"],
        env={**env, "PYTHONPATH": str(ROOT), "AE_QUICK": "1", "AE_FROM_SCRATCH": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", "TensorFlow's C++ notes (no GPU, oneDNN) do not reach the notebook"
    line = done.stdout.strip()
    assert line.startswith("Keras ") and " on the tensorflow backend, NumPy " in line
    assert line.endswith("quick mode (AE_QUICK=1): small subsets and few epochs, for tests."), line


@pytest.mark.parametrize(
    ("quick", "scratch", "expected"),
    [
        ("", "", "; full mode: the whole MNIST."),
        ("1", "", "; quick mode (AE_QUICK=1): small subsets and few epochs, for tests."),
        ("1", "1", "; quick mode (AE_QUICK=1): small subsets and few epochs, for tests; AE_FROM_SCRATCH=1: every"),
    ],
    ids=["full", "quick", "quick-from-scratch"],
)
def test_describe_run_names_versions_backend_and_mode(monkeypatch, quick, scratch, expected):
    import keras
    import numpy as np

    monkeypatch.setenv("AE_QUICK", quick)
    monkeypatch.setenv("AE_FROM_SCRATCH", scratch)
    line = course.describe_run()
    assert line.startswith(
        f"Keras {keras.__version__} on the {keras.backend.backend()} backend, NumPy {np.__version__}"
    )
    assert expected in line and "\n" not in line


def test_setup_in_a_kernel_that_runs_keras_already_says_to_restart(monkeypatch, capsys):
    import keras

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", other)
    monkeypatch.setenv("AE_QUICK", "1")
    guarded = "tensorflow" not in sys.modules
    try:
        course.setup(backend=other)
    finally:
        if guarded and sys.modules.get("tensorflow", "loaded") is None:
            del sys.modules["tensorflow"]  # the guard of a JAX process; later tests may import TensorFlow
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"Keras already runs on {keras.backend.backend()} in this kernel; restart the kernel to change the backend."
    )
    assert f"on the {keras.backend.backend()} backend" in out[1]
