"""Every notebook runs on Google Colab's own library versions, with utils installed exactly as its Setup cell does.

`make colab-env` builds .venv-colab/ from requirements-colab.txt (Colab's published versions). Each notebook then
gets a fresh stand-in for a Colab runtime: a throwaway environment layered over .venv-colab (so nothing is ever
installed into the cached one), a fake ``google.colab`` imported when the kernel starts (as Colab's kernel does),
and a working folder that holds only the notebook, whose Setup cell's `%pip install` points to a local clone of
HEAD instead of GitHub. The Setup cell itself installs utils from there; the notebook must then run in quick mode
without error. (The clone is of the committed HEAD: uncommitted changes to utils are not tested here.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import NOTEBOOKS, ROOT, notebook_id, outputs_text
from utils import config
from utils.files import write_atomically

SELECTION_ENV = "AE_COLAB_NOTEBOOKS"  # unset: every notebook (CI); or prefixes such as "01 05" while you work
COLAB_ENV = ROOT / ".venv-colab"
COLAB_REQUIREMENTS = ROOT / "requirements-colab.txt"
KERNEL_NAME = "colab-stack"
DISTRIBUTION = "ae-mnist-utils"
# The one place the repository's address is written; the Setup cell's %pip line installs from it.
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
PIP_INSTALL = re.compile(r'^(\s*%pip install --quiet "ae-mnist-utils @ git\+)([^"]+)(")', re.MULTILINE)
# Nothing listens on the discard port, so git fails at once, as it does on a runtime without internet.
UNREACHABLE_REPOSITORY = "https://127.0.0.1:9/ae-mnist/autoencoders-mnist"
PROBE = (
    "import json, sys, utils, keras, numpy\n"
    "print(json.dumps({'utils': utils.__file__, 'colab': 'google.colab' in sys.modules,\n"
    "                  'keras': keras.__version__, 'numpy': numpy.__version__}))"
)
# Variables of this machine's shells that a Colab kernel does not have.
NOT_ON_COLAB = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "AE_HEADLESS",
    "AE_OUTPUT_DIR",
    "KERAS_BACKEND",
    "MPLBACKEND",
)


def colab_pins() -> dict[str, str]:
    """The versions requirements-colab.txt pins, by normalised distribution name."""
    found = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", COLAB_REQUIREMENTS.read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in found}


def site_packages(python: Path) -> Path:
    """The purelib folder of the environment whose interpreter is ``python``."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip())


@pytest.fixture(scope="module")
def colab_base() -> Path:
    """The cached environment with Colab's versions; fails with the fix if it is missing or stale."""
    python = COLAB_ENV / "bin" / "python"
    assert python.is_file(), f"{COLAB_ENV} is missing: run `make colab-env` (`make test` does it)."
    purelib = site_packages(python)
    installed = {
        dist.metadata["Name"].lower().replace("_", "-"): dist.version
        for dist in metadata.distributions(path=[str(purelib)])
    }
    stale = {
        name: (version, installed.get(name)) for name, version in colab_pins().items() if installed.get(name) != version
    }
    assert not stale, (
        f"{COLAB_ENV} does not match requirements-colab.txt (pinned, installed): {stale}; rerun `make colab-env`."
    )
    assert DISTRIBUTION not in installed, (
        f"{DISTRIBUTION} must not be installed in {COLAB_ENV}: the Setup cell installs it."
    )
    return purelib


@pytest.fixture(scope="module")
def repository_clone(tmp_path_factory) -> Path:
    """A clone of this repository's HEAD, standing in for GitHub."""
    clone = tmp_path_factory.mktemp("github") / "autoencoders-mnist"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    return clone


@dataclass
class Runtime:
    """A stand-in for one fresh Colab runtime."""

    python: Path
    purelib: Path
    content: Path
    kernels: Path


def new_runtime(folder: Path, colab_purelib: Path) -> Runtime:
    """A throwaway environment over Colab's packages, with a fake google.colab and an empty working folder."""
    runtime = folder / "runtime"
    subprocess.run([COLAB_ENV / "bin" / "python", "-m", "venv", "--without-pip", str(runtime)], check=True, timeout=120)
    python = runtime / "bin" / "python"
    purelib = site_packages(python)
    (purelib / "colab-stack.pth").write_text(f"{colab_purelib}\n")
    fake_colab = purelib / "google" / "colab"  # `google` is a namespace package shared with protobuf
    fake_colab.mkdir(parents=True)
    (fake_colab / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab: being imported is its job."""\n')
    (fake_colab / "output.py").write_text('"""Importable, as JAX imports it when it sees google.colab."""\n')
    kernel = folder / "kernels" / KERNEL_NAME
    kernel.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    argv.append("--IPKernelApp.exec_lines=import google.colab")  # Colab's kernel starts with it imported
    spec = {"argv": argv, "display_name": "Colab stack", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec))
    content = folder / "content"  # like Colab's /content: only the notebook here, no utils/ here or in ../
    content.mkdir()
    return Runtime(python, purelib, content, kernel.parent)


def notebook_pointing_to(path: Path, repository: str) -> nbformat.NotebookNode:
    """A copy of the notebook whose Setup cell installs from ``repository``, with a probe cell at the end."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    found = PIP_INSTALL.findall(setup.source)
    assert [address for _, address, _ in found] == [REPOSITORY], (
        f"{path.name}: the Setup cell must %pip install utils from {REPOSITORY} exactly once"
    )
    setup.source = PIP_INSTALL.sub(lambda match: f"{match[1]}{repository}{match[3]}", setup.source)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    return notebook


def run_in(runtime: Runtime, notebook: nbformat.NotebookNode, name: str, timeout: int = 900) -> None:
    """Execute ``notebook`` in quick mode on the runtime's kernel, in its working folder (raises on a cell error).

    The notebook is written to the working folder first, and the executed copy to outputs/quick/colab-stack/.
    """
    nbformat.write(notebook, runtime.content / name)
    environment = {name: value for name, value in os.environ.items() if name not in NOT_ON_COLAB}
    environment |= {"AE_QUICK": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    manager = KernelManager(
        kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(runtime.kernels)])
    )
    client = NotebookClient(
        notebook, km=manager, timeout=timeout, resources={"metadata": {"path": str(runtime.content)}}
    )
    try:
        client.execute(env=environment)
    finally:
        if manager.has_kernel:  # we own the manager, so nbclient leaves the kernel running: stop it
            manager.shutdown_kernel(now=True)
        text = nbformat.writes(notebook).encode()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(config.QUICK_ENV, "1")
            executed = config.output_dir("colab-stack") / name
        write_atomically(executed, lambda handle: handle.write(text))


def uncommitted_note() -> str:
    """A reminder when the checkout differs from HEAD: the test installs the committed HEAD only."""
    changed = subprocess.run(
        ["git", "status", "--porcelain", "utils", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"\n(Uncommitted changes are not tested here: the Setup cell installs HEAD.)\n{changed}" if changed else ""


def selected_notebooks() -> list[Path]:
    """Every notebook, or those whose number prefixes $AE_COLAB_NOTEBOOKS lists."""
    prefixes = os.environ.get(SELECTION_ENV, "").split()
    return [path for path in NOTEBOOKS if not prefixes or path.name[:2] in prefixes]


@pytest.mark.parametrize("path", selected_notebooks(), ids=notebook_id)
def test_notebook_runs_on_the_colab_stack(path, colab_base, repository_clone, tmp_path):
    runtime = new_runtime(tmp_path, colab_base)
    notebook = notebook_pointing_to(path, f"file://{repository_clone}")
    try:
        run_in(runtime, notebook, path.name)
    except CellExecutionError as error:
        pytest.fail(f"{path.name} fails on Colab's versions:\n{error}{uncommitted_note()}", pytrace=False)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells), "every code cell ran"
    printed = "\n".join(outputs_text(cell) for cell in code_cells)
    assert "Traceback (most recent call last)" not in printed, "a cell printed a traceback it caught"

    # The Setup cell installed utils from the clone, and nothing else: Colab's own packages stay as they are.
    installed = {dist.metadata["Name"] for dist in metadata.distributions(path=[str(runtime.purelib)])}
    assert installed == {DISTRIBUTION}, f"the install added or changed {sorted(installed - {DISTRIBUTION})}"
    source = json.loads(
        metadata.Distribution.at(next(runtime.purelib.glob("ae_mnist_utils-*.dist-info"))).read_text("direct_url.json")
    )
    assert source["url"] == f"file://{repository_clone}" and source["vcs_info"]["vcs"] == "git"
    # The kernel may send the printed line and its newline as two stream messages: read the cell's whole text.
    printed_by_probe = "".join(out.text for out in code_cells[-1].outputs if out.output_type == "stream")
    probe = json.loads(printed_by_probe.strip().splitlines()[-1])
    assert probe["colab"], "the kernel did not look like Colab's"
    assert Path(probe["utils"]).is_relative_to(runtime.purelib), f"utils came from {probe['utils']}"
    pins = colab_pins()
    assert (probe["keras"], probe["numpy"]) == (pins["keras"], pins["numpy"])
    assert f"Keras {pins['keras']} " in outputs_text(code_cells[0]), "the Setup cell reports Colab's Keras"
    assert (runtime.content / "outputs" / "quick").is_dir(), "outputs go under the working folder in Colab"


@pytest.fixture(scope="module")
def failed_install(colab_base, tmp_path_factory) -> tuple[Runtime, nbformat.NotebookNode, CellExecutionError]:
    """Notebook 01 on a runtime that cannot reach the repository."""
    runtime = new_runtime(tmp_path_factory.mktemp("offline"), colab_base)
    notebook = notebook_pointing_to(NOTEBOOKS[0], UNREACHABLE_REPOSITORY)
    with pytest.raises(CellExecutionError) as raised:
        run_in(runtime, notebook, "failed_install.ipynb", timeout=300)
    return runtime, notebook, raised.value


ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_FILE = re.compile(r"/ipykernel_\d+/\d+\.py$")


def test_failed_install_stops_at_the_setup_cell_with_pips_reason(failed_install):
    runtime, notebook, _ = failed_install
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    setup, later = code_cells[0], code_cells[1:]
    assert setup.execution_count and not any(cell.execution_count for cell in later), "only the Setup cell ran"
    shown = ANSI.sub("", outputs_text(setup))
    assert "Failed to connect to 127.0.0.1 port 9" in shown, "pip's own reason is shown"
    assert not list(runtime.purelib.glob("ae_mnist_utils-*")), "nothing was installed"
    assert not list(runtime.purelib.glob("utils")), "nothing was installed"


def test_failed_install_ends_in_a_short_error_from_the_cell_itself(failed_install):
    _, notebook, error = failed_install
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    errors = [output for output in setup.outputs if output.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == error.ename == "ModuleNotFoundError"
    assert errors[0].evalue == "No module named 'utils'"
    traceback = ANSI.sub("", "\n".join(errors[0].traceback))
    assert "from utils import course" in traceback, "the cell's own import line is shown"
    # IPython names each frame by its file; the cell's own is ipykernel's file of the cell's code (IPython 7)
    # or "Cell In[1]" (IPython 8). Any other Python file would be a library's frame.
    files = re.findall(r"\S+\.py\b", traceback)
    library_files = [name for name in files if not CELL_FILE.search(name)]
    assert not library_files and "site-packages" not in traceback, f"frames of library files:\n{traceback}"
    assert len(files) + traceback.count("Cell In[") == 1, f"one frame, the cell's:\n{traceback}"
