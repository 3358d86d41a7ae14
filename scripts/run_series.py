"""Execute the notebook series headless, in order (the main job behind `make run`), and time each notebook.

python scripts/run_series.py                    # full mode, executed copies in outputs/executed/
python scripts/run_series.py --fresh            # the same from an empty output folder: the timing table
python scripts/run_series.py --in-place --fresh # refresh the committed notebooks' outputs (`make notebooks`)
python scripts/run_series.py --only 03 04       # a few notebooks
AE_QUICK=1 python scripts/run_series.py         # quick mode (outputs/quick/)

Kernels run with AE_HEADLESS=1, so the latent explorer draws its static figure. The timing table is printed
and written to outputs/timing.md; each notebook's time includes starting its kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from importlib import metadata
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm import tqdm
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.references import cpu_name  # noqa: E402
from utils import config, data  # noqa: E402
from utils.files import save_output, write_atomically  # noqa: E402
from utils.metrics import markdown_table  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"


def kernel_config(socket_dir: Path) -> Config:
    """Kernels talk to us over IPC (Unix sockets in ``socket_dir``) instead of TCP on localhost.

    Over TCP, ipykernel warns once per notebook "[IPKernelApp] WARNING | Kernel is running over TCP
    without encryption"; with the IPC transport that warning has no reason to appear, and no other
    user of the machine can reach the kernel. We use IPC rather than filtering that message.
    """
    return Config({"KernelManager": {"transport": "ipc", "ip": str(socket_dir / "kernel")}})


def execute(path: Path, destination: Path | None, timeout: int) -> float:
    """Run one notebook top to bottom with a per-cell progress bar; write it atomically to ``destination``.

    With no destination (the outputs folder cannot be written), the executed copy is not kept.
    """
    notebook = nbformat.read(path, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    bar = tqdm(total=code_cells, desc=path.stem, unit="cell", leave=True, file=sys.stdout, ncols=90)
    # A short folder: Unix socket paths may not be longer than about 100 characters.
    socket_dir = Path(tempfile.mkdtemp(prefix="ae-kernel-"))
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        on_cell_executed=lambda cell, cell_index, execute_reply: bar.update(cell.cell_type == "code"),
        config=kernel_config(socket_dir),
    )
    start = time.perf_counter()
    try:
        client.execute(env={**os.environ, config.HEADLESS_ENV: "1"})
    finally:
        bar.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
        if destination is not None:
            text = nbformat.writes(notebook).encode()
            write_atomically(destination, lambda handle: handle.write(text + b"\n"))
    return time.perf_counter() - start


BUDGET_SECONDS = 90


def empty_output_folder() -> Path:
    """Remove everything this mode generated (full mode keeps quick mode's folder), and return the folder."""
    root = config.output_dir()
    for entry in root.iterdir():
        if entry.name == "quick" and not config.quick_mode():
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return root


def timing_table(timings: list[dict], fresh: bool) -> str:
    """The per-notebook times as Markdown, with the machine and the budget."""
    cpu = cpu_name()
    rows = [
        {**row, f"within {BUDGET_SECONDS} s": "yes" if row["seconds"] <= BUDGET_SECONDS else "**no**"}
        for row in timings
    ]
    start = "an empty output folder" if fresh else "the existing output folder"
    header = (
        f"{'Quick' if config.quick_mode() else 'Full'} mode, from {start}, {date.today().isoformat()}; "
        f"{cpu}, {os.cpu_count()} cores; Keras {metadata.version('keras')}; each notebook on its default backend."
    )
    total = sum(row["seconds"] for row in timings)
    return f"{header}\n\n{markdown_table(rows, {'seconds': '.1f'})}\n\nWhole series: {total:.0f} s."


def summary_rows() -> list[dict]:
    """Read the metrics the notebooks wrote and return the rows of the final table."""
    path = config.output_dir("metrics") / "evaluation.json"
    if not path.is_file():
        return []
    metrics = json.loads(path.read_text())
    autoencoder, pca = metrics["autoencoder"], metrics["pca"]
    return [
        {
            "latent size": metrics["latent_dim"],
            "test MSE": autoencoder["mse"],
            "PSNR (dB)": autoencoder["psnr"],
            "SSIM": autoencoder["ssim"],
            "PCA MSE (same size)": pca["mse"],
            "training time (s)": metrics["training_seconds"],
        }
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-place", action="store_true", help="overwrite notebooks/ with the executed copies")
    parser.add_argument("--only", nargs="*", default=[], help="notebook number prefixes to run, e.g. 03 04")
    parser.add_argument("--fresh", action="store_true", help="empty the output folder first (a fresh clone's run)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a single cell may take")
    args = parser.parse_args()

    try:
        data.load_mnist()
    except data.DataUnavailableError as exc:
        print(exc, file=sys.stderr)
        return 2

    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        paths = [p for p in paths if p.name[:2] in args.only]
    if not paths:
        print("No notebooks matched.", file=sys.stderr)
        return 2
    mode = "quick" if config.quick_mode() else "full"
    out_dir = NOTEBOOKS if args.in_place else config.output_dir("executed")
    unwritable = config.outputs_problem()
    if unwritable is not None:  # the notebooks still run; what they would save is skipped
        print(unwritable)
        out_dir = out_dir if args.in_place else None
    elif args.fresh:
        print(f"Emptied {empty_output_folder()}")
    print(f"Running {len(paths)} notebooks in {mode} mode; executed copies go to {out_dir or 'nowhere'}")

    timings = []
    for path in paths:
        try:
            seconds = execute(path, out_dir and out_dir / path.name, args.timeout)
        except CellExecutionError as exc:
            print(
                f"\n{path.name} failed; the executed copy with the error is in {out_dir and out_dir / path.name}\n{exc}",
                file=sys.stderr,
            )
            return 1
        timings.append({"notebook": path.name, "seconds": seconds})

    table = timing_table(timings, args.fresh)
    table_path = config.output_dir() / "timing.md"
    saved = save_output(table_path, lambda handle: handle.write(table.encode() + b"\n"), "The timing table")
    print(f"\n{table}" + (f"\n(also in {table_path})" if saved else ""))
    rows = summary_rows()
    if rows:
        formats = {
            "test MSE": ".5f",
            "PSNR (dB)": ".2f",
            "SSIM": ".4f",
            "PCA MSE (same size)": ".5f",
            "training time (s)": ".1f",
        }
        print("\nSummary (written by notebooks 03 and 04):\n" + markdown_table(rows, formats))
    if unwritable is None:
        print(f"\nFigures, metrics and models are in {config.output_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
