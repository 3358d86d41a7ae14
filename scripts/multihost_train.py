"""Train the series' dense autoencoder as a multi-host job: 2 processes on 127.0.0.1 (notebook 12).

python scripts/multihost_train.py             # full mode: the whole training set, 3 epochs
python scripts/multihost_train.py --quick     # or AE_QUICK=1: 5,120 images, 2 epochs
python scripts/multihost_train.py --report run.json   # also write every process's result as JSON

One command is the whole job. It picks a free port for the coordinator, starts one worker process per
"host", and waits for them, never longer than --timeout. Each worker joins the job with
``keras.distribution.initialize`` (which calls ``jax.distributed.initialize``), builds the same
``keras.distribution.DataParallel`` as notebook 12 over every device of every process, and trains on its
own share of the data. At the end it prints one line per process and exits 0 when every process finished
and they agree on the final loss, 1 when one failed or they disagree, and 124 on timeout.

The engine is JAX: the cross-process all-reduce on CPU goes through Gloo over TCP, so no GPU, MPI or
TF_CONFIG is needed, and the Keras code is the one a GPU cluster or a TPU pod runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 124
QUICK_TRAIN, QUICK_VAL = 5120, 1024  # images in quick mode, split among the processes
# The workers report the same global loss, computed from all-reduced values; allow only float noise.
LOSS_AGREEMENT = 1e-6


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the coordinator takes it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_environment() -> dict[str, str]:
    """The launcher's environment with what a worker needs: JAX, one CPU device, the repository's utils."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "jax"
    # One device per process, whatever the caller set (notebook 12 splits its own CPU in two).
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_worker(args: argparse.Namespace) -> int:
    """One process of the job: join it, train on this process's shard, write the result file."""
    # A watchdog: a worker ends by itself even if its launcher was killed and a peer never arrives.
    watchdog = threading.Timer(args.timeout, lambda: os._exit(EXIT_TIMEOUT))
    watchdog.daemon = True
    watchdog.start()
    # The workers never need TensorFlow; Keras would import it (seconds per process) only to seed it.
    sys.modules["tensorflow"] = None

    import jax

    # Cross-process collectives on CPU through Gloo (JAX's default in recent releases; stated for older ones).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    keras.distribution.initialize(
        job_addresses=args.coordinator, num_processes=args.processes, process_id=args.process_id
    )
    from utils import config, files, models, preprocessing

    prepared = preprocessing.prepare_mnist(quick=args.quick)
    train_size, val_size = (QUICK_TRAIN, QUICK_VAL) if args.quick else (len(prepared.x_train), len(prepared.x_val))
    # Each process reads its own shard, the same size everywhere so that all take the same number of steps.
    train_size, val_size = (size // args.processes * args.processes for size in (train_size, val_size))
    x_train = prepared.x_train[:train_size][args.process_id :: args.processes]
    x_val = prepared.x_val[:val_size][args.process_id :: args.processes]

    devices = keras.distribution.list_devices()  # every device of every process
    # The shards are already split per process, so Keras must not split them again.
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(config.SEED)
    _, _, autoencoder = models.build_dense_autoencoder()
    autoencoder.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.MeanSquaredError(name="mse")],
    )
    start = time.perf_counter()
    history = autoencoder.fit(
        x_train,
        x_train,
        batch_size=args.per_process_batch,  # this process's part of each global batch
        epochs=args.epochs,
        shuffle=True,
        validation_data=(x_val, x_val),
        verbose=0,
    )
    seconds = time.perf_counter() - start
    result = {
        "process_id": jax.process_index(),
        "processes": jax.process_count(),
        "local_devices": [str(device) for device in jax.local_devices()],
        "global_devices": devices,
        "shard_images": len(x_train),
        "global_batch": args.per_process_batch * args.processes,
        "history": {key: [float(value) for value in values] for key, values in history.history.items()},
        "seconds": seconds,
    }
    text = json.dumps(result, indent=1).encode()
    files.write_atomically(Path(args.result_file), lambda handle: handle.write(text))
    return EXIT_OK


def stop(processes: list[subprocess.Popen]) -> set[int]:
    """Kill every still-running worker and its children; returns the indices of those it stopped.

    SIGKILL, because JAX's distributed runtime takes SIGTERM as a preemption notice and carries on.
    """
    stopped = set()
    for index, process in enumerate(processes):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # each worker leads its own process group
                stopped.add(index)
            except ProcessLookupError:
                pass
    for process in processes:
        process.wait()
    return stopped


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def describe_failure(code: int, stopped: bool, timed_out: bool) -> str:
    """Why a worker left no result: stopped by the launcher, its own watchdog, a signal or an error."""
    if stopped:
        return "timed out and was stopped" if timed_out else "was stopped because another process failed"
    if code == EXIT_TIMEOUT:
        return "timed out (its own watchdog)"
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"failed (exit code {code})"


def summarize(
    results: list[dict | None], codes: list[int], stopped: set[int], timed_out: bool
) -> tuple[list[str], int]:
    """One line per process and a verdict line; the exit code (0 only if all finished and agree)."""
    lines, status = [], EXIT_OK
    for process_id, (result, code) in enumerate(zip(results, codes, strict=True)):
        if result is None:
            why = describe_failure(code, process_id in stopped, timed_out)
            lines.append(f"process {process_id}/{len(results)}: {why}")
            status = EXIT_FAILED
            continue
        loss = result["history"]["loss"]
        lines.append(
            f"process {process_id}/{len(results)}: finished {len(loss)} epochs on {result['shard_images']:,} "
            f"images, devices {', '.join(result['local_devices'])} of {len(result['global_devices'])}, "
            f"global batch {result['global_batch']}, loss {loss[0]:.5f} -> {loss[-1]:.5f}, "
            f"val_loss {result['history']['val_loss'][-1]:.5f}, {result['seconds']:.1f} s"
        )
    finals = [result["history"]["loss"][-1] for result in results if result is not None]
    if status == EXIT_OK:
        spread = (max(finals) - min(finals)) / max(finals)
        if spread > LOSS_AGREEMENT:
            lines.append(f"the processes disagree on the final loss: {finals}")
            status = EXIT_FAILED
        else:
            lines.append(f"all {len(results)} processes finished and agree on the final loss {finals[0]:.6f}")
    return lines, status


def launch(args: argparse.Namespace) -> int:
    """Start the workers, wait for them within the timeout, print the summary; returns the exit code."""
    coordinator = f"127.0.0.1:{free_port()}"
    mode = "quick mode" if args.quick else "full mode"
    print(
        f"Starting {args.processes} processes ({mode}, {args.epochs} epochs, coordinator {coordinator}, "
        f"timeout {args.timeout:.0f} s)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="multihost-") as folder:
        folder = Path(folder)
        processes, logs = [], []
        timed_out, stopped = True, set()
        try:
            for process_id in range(args.processes):
                log = folder / f"process{process_id}.log"
                command = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    f"--process-id={process_id}",
                    f"--processes={args.processes}",
                    f"--coordinator={coordinator}",
                    f"--result-file={folder / f'process{process_id}.json'}",
                    f"--epochs={args.epochs}",
                    f"--per-process-batch={args.per_process_batch}",
                    f"--learning-rate={args.learning_rate}",
                    f"--timeout={args.timeout}",
                ] + (["--quick"] if args.quick else [])
                with open(log, "wb") as log_file:
                    processes.append(
                        subprocess.Popen(
                            command,
                            stdout=log_file,
                            stderr=subprocess.STDOUT,
                            env=worker_environment(),
                            start_new_session=True,
                        )
                    )
                logs.append(log)
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                codes = [process.poll() for process in processes]
                if all(code is not None for code in codes) or any(code not in (None, 0) for code in codes):
                    # All done, or one failed: its peers would wait for it at the next all-reduce.
                    timed_out = False
                    break
                time.sleep(0.2)
        finally:
            stopped = stop(processes)
        codes = [process.returncode for process in processes]
        results = [
            json.loads(path.read_text()) if path.is_file() else None
            for path in (folder / f"process{i}.json" for i in range(args.processes))
        ]
        lines, status = summarize(results, codes, stopped, timed_out)
        print("\n".join(lines), flush=True)
        for process_id, (result, log) in enumerate(zip(results, logs, strict=True)):
            if result is None and tail(log):
                print(f"--- last lines of process {process_id}'s output ---\n{tail(log)}", file=sys.stderr)
        if args.report:
            report = {"coordinator": coordinator, "exit_codes": codes, "results": results, "summary": lines}
            Path(args.report).write_text(json.dumps(report, indent=1))
    if timed_out:
        print(f"timeout: the job did not finish within {args.timeout:.0f} s; every worker was stopped.")
        return EXIT_TIMEOUT
    return status


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (also AE_QUICK=1)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes, one CPU device each")
    parser.add_argument("--epochs", type=int, help="default: 3, or 2 in quick mode")
    parser.add_argument("--per-process-batch", type=int, default=128, help="images per process and step")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--timeout", type=float, help="seconds before every worker is stopped (600, quick 300)")
    parser.add_argument("--report", help="write the processes' results and the summary to this JSON file")
    worker = parser.add_argument_group("internal, set by the launcher for its workers")
    worker.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    worker.add_argument("--coordinator", help=argparse.SUPPRESS)
    worker.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.quick = args.quick or os.environ.get("AE_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}
    args.epochs = args.epochs or (2 if args.quick else 3)
    args.timeout = args.timeout or (300.0 if args.quick else 600.0)
    for name in ("processes", "epochs", "per_process_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if not args.learning_rate > 0 or not args.timeout > 0:
        parser.error("--learning-rate and --timeout must be positive numbers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_worker(args) if args.worker else launch(args)


if __name__ == "__main__":
    sys.exit(main())
