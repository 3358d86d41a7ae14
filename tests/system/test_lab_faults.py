"""A shared lab machine, made real and run through Jupyter kernels in quick mode.

Each fault is real: a read-only bind mount over the outputs folder, a small tmpfs that fills up, and two
kernels running notebook 03 on one outputs folder at once. Each test checks what the learner sees (one
line naming the file and the fix, no traceback), that nothing half-written is left, and that the next
notebook runs. Mounting needs root: `make test` runs these as root, `make check` skips them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tests.conftest import NOTEBOOKS, ROOT, execute_notebook, needs_root, outputs_text

NOTEBOOK = {path.name[:2]: path for path in NOTEBOOKS}
QUICK = {"AE_QUICK": "1", "AE_HEADLESS": "1", "KERAS_BACKEND": "jax"}
TRACEBACK_MARKS = ("Traceback", 'File "', "Error:", "h5py", "---->")


def run(number: str, outputs, **env) -> nbformat.NotebookNode:
    """Notebook ``number`` executed in a fresh kernel, with its outputs going to ``outputs``."""
    notebook = nbformat.read(NOTEBOOK[number], as_version=4)
    try:
        return execute_notebook(notebook, env={**QUICK, "AE_OUTPUT_DIR": str(outputs), **env})
    except CellExecutionError as error:
        pytest.fail(f"notebook {number} stopped with an error:\n{str(error)[-2500:]}")


def printed(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(outputs_text(cell) for cell in notebook.cells if cell.cell_type == "code")


def assert_no_traceback(notebook: nbformat.NotebookNode) -> None:
    text = printed(notebook)
    for mark in TRACEBACK_MARKS:
        assert mark not in text, f"the notebook shows {mark!r}:\n{text[-2000:]}"


def lines_with(notebook: nbformat.NotebookNode, phrase: str) -> list[str]:
    return [line for line in printed(notebook).splitlines() if phrase in line]


def leftovers(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if ".part" in path.name)


def mount(*arguments: str) -> None:
    subprocess.run(["mount", *arguments], check=True, capture_output=True, text=True)


@pytest.fixture
def mount_point(tmp_path):
    """An empty folder for the test to mount over; unmounted afterwards, whatever happens."""
    folder = tmp_path / "outputs"
    folder.mkdir()
    yield folder
    while subprocess.run(["mountpoint", "-q", str(folder)]).returncode == 0:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@needs_root("bind-mounts the outputs folder read-only")
def test_read_only_outputs_folder_gives_one_line_and_the_notebooks_still_teach(mount_point):
    mount("--bind", str(mount_point), str(mount_point))
    mount("-o", "remount,ro,bind", str(mount_point))
    training = run("03", mount_point)
    evaluation = run("04", mount_point)
    for notebook in (training, evaluation):
        assert_no_traceback(notebook)
        notice = lines_with(notebook, "cannot be written")
        assert len(notice) == 1 and "AE_OUTPUT_DIR" in notice[0], printed(notebook)[-2000:]
    # 03 still trains and reports its run from memory; 04 falls back to the shipped weights.
    assert lines_with(training, "epochs in"), printed(training)[-2000:]
    assert lines_with(evaluation, "Loaded the shipped weights of dense_autoencoder_32d")
    assert list(mount_point.iterdir()) == []


@needs_root("mounts a small tmpfs as the outputs folder")
def test_full_disk_gives_one_line_leaves_nothing_half_written_and_the_next_notebook_runs(mount_point):
    # Room for the figures and metrics, not for a model: the checkpoint's first write fills the disk.
    mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point))
    training = run("03", mount_point)
    assert_no_traceback(training)
    full = lines_with(training, "No space left on device")
    assert full and all("free" in line and "AE_OUTPUT_DIR" in line for line in full), printed(training)[-2000:]
    assert lines_with(training, "epochs in"), "03 should report its run from the model in memory"
    assert leftovers(mount_point) == []
    assert not (mount_point / "quick" / "models" / "dense_autoencoder_32d.keras").exists()

    evaluation = run("04", mount_point)
    assert_no_traceback(evaluation)
    assert lines_with(evaluation, "Loaded the shipped weights of dense_autoencoder_32d")
    assert leftovers(mount_point) == []


RUN_ONE = """
import sys
sys.path.insert(0, sys.argv[1])
import nbformat
from tests.conftest import execute_notebook
notebook = nbformat.read(sys.argv[2], as_version=4)
try:
    execute_notebook(notebook, env=dict(a.split("=", 1) for a in sys.argv[4:]))
finally:
    nbformat.write(notebook, sys.argv[3])
"""


def test_two_kernels_on_one_outputs_folder_both_finish_and_the_last_save_wins(tmp_path):
    outputs = tmp_path / "outputs"
    env = [f"{key}={value}" for key, value in {**QUICK, "AE_OUTPUT_DIR": str(outputs)}.items()]
    results = [tmp_path / f"run{index}.ipynb" for index in (1, 2)]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN_ONE, str(ROOT), str(NOTEBOOK["03"]), str(result), *env],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for result in results
    ]
    logs = [run.communicate(timeout=900)[0] for run in runs]
    for run_process, log, result in zip(runs, logs, results, strict=True):
        assert run_process.returncode == 0, log[-3000:]
        assert_no_traceback(nbformat.read(result, as_version=4))
    models = outputs / "quick" / "models"
    assert leftovers(outputs) == []
    assert (models / "dense_autoencoder_32d.best.weights.h5").is_file()
    record = json.loads((models / "dense_autoencoder_32d.json").read_text())
    assert record["model_file_sha256"], "the saved model and its record are one checked unit"

    evaluation = run("04", outputs)
    assert_no_traceback(evaluation)
    assert lines_with(evaluation, "Loaded the model saved in"), printed(evaluation)[-2000:]


def test_a_changed_code_size_in_03_makes_04_use_the_shipped_weights(tmp_path):
    outputs = tmp_path / "outputs"
    training = nbformat.read(NOTEBOOK["03"], as_version=4)
    edited = [cell for cell in training.cells if "build_dense_autoencoder(latent_dim=32)" in cell.source]
    assert len(edited) == 1
    edited[0].source = edited[0].source.replace("latent_dim=32", "latent_dim=16")
    execute_notebook(training, env={**QUICK, "AE_OUTPUT_DIR": str(outputs)})
    evaluation = run("04", outputs)
    assert_no_traceback(evaluation)
    mismatch = lines_with(evaluation, "different architecture")
    assert len(mismatch) == 1 and "shipped weights" in mismatch[0], printed(evaluation)[-2000:]
    assert lines_with(evaluation, "Loaded the shipped weights of dense_autoencoder_32d")


HOLD_OPEN = """
import sys, time, h5py
with h5py.File(sys.argv[1], "w"):  # h5py locks the file while it is open for writing, as a kernel saving it does
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_checkpoint_that_another_kernel_is_writing_does_not_stop_fit(tmp_path):
    outputs = tmp_path / "outputs"
    models = outputs / "quick" / "models"
    models.mkdir(parents=True)
    checkpoint = models / "dense_autoencoder_32d.best.weights.h5"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(checkpoint)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        training = run("03", outputs)
    finally:
        holder.kill()
        holder.wait()
    assert_no_traceback(training)
    assert leftovers(outputs) == []
    assert checkpoint.stat().st_size > 0, "this run's checkpoint replaced the other kernel's file when complete"
