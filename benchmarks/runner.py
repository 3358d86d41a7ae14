"""What the benchmark runs and in which order: the recipes and ablations, one training run in a fresh child
process, and the interleaved plan of rounds.

The parent (``measure``) never imports Keras: every run is a child process started with ``KERAS_BACKEND``
set, one after another, and ``run_job`` is what that child does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks import references
from utils import config

BACKENDS = ("tensorflow", "jax")
# The command line, which runs ``run_job`` when given ``--child REQUEST``.
CHILD_SCRIPT = Path(__file__).resolve().with_name("training_speed.py")


@dataclasses.dataclass(frozen=True)
class Job:
    """One thing to train: a model, how its settings differ from the series' defaults, and where it runs."""

    label: str
    model: str  # "dense", "conv", "blog_shallow" or "blog_deep"
    changes: dict = dataclasses.field(default_factory=dict)
    environment: dict = dataclasses.field(default_factory=dict)
    backends: tuple[str, ...] = BACKENDS
    notebook_path: bool = True  # train as the notebooks do (early stopping, checkpoint, progress lines)
    max_rounds: int | None = None
    train_images: int | None = None  # train and validate on N images only (throughput runs)
    checkpoint: bool = True  # with notebook_path: keep the best epoch in a .keras file, as the notebooks do
    in_default: bool = True  # part of `--ablations default`
    baseline: str = "reference"
    baseline_backend: str | None = None  # None: the baseline runs on the same backend
    note: str = ""


RECIPES = {
    "series": Job("series default: dense 784-512-256-32, the notebooks' settings", "dense"),
    "blog_shallow": Job(
        "Keras blog: 784-32-784, Adam 1e-3, batch 256, BCE, 50 epochs",
        "blog_shallow",
        {**references.BLOG_SETTINGS, "epochs": 50},
        notebook_path=False,
    ),
    "blog_deep": Job(
        "Keras blog deep: 128-64-32, Adam 1e-3, batch 256, BCE, 100 epochs",
        "blog_deep",
        {**references.BLOG_SETTINGS, "epochs": 100},
        notebook_path=False,
    ),
    "conv": Job(
        "series conv model (notebook 06), its settings, 32-number code",
        "conv",
        backends=("tensorflow",),
        max_rounds=1,
        note="once, on TensorFlow only: XLA's CPU convolutions make an epoch about 12x slower on JAX "
        "(see the conv ablations)",
    ),
}

# Short runs that change one thing. The dense ones train ABLATION_EPOCHS epochs (the cosine schedule decays
# over those epochs) next to "reference", the default run the same way; the conv ones train CONV_ABLATION_EPOCHS
# epochs on CONV_ABLATION_IMAGES images (validated on as many) next to "conv_reference" on TensorFlow.
# `--ablations default` runs those marked `in_default`; `--ablations all` runs every one.
ABLATION_EPOCHS = 6
CONV_ABLATION_EPOCHS = 2
CONV_ABLATION_IMAGES = 5000
_CONV = {"model": "conv", "train_images": CONV_ABLATION_IMAGES, "baseline": "conv_reference"}
ABLATIONS = {
    "reference": Job("dense model as is, same length as the ablations", "dense"),
    "no_jit": Job(
        "without XLA (jit_compile=False)",
        "dense",
        {"jit_compile": False},
        backends=("tensorflow",),
        note="TensorFlow only: on JAX, jit_compile=False runs the step op by op",
    ),
    "batch_250": Job(
        "batch size 250 (divides 50,000 and 10,000: no smaller last batch to compile a second time)",
        "dense",
        {"batch_size": 250},
    ),
    "spe_20": Job("steps_per_execution=20", "dense", {"steps_per_execution": 20}),
    "bf16": Job("mixed_bfloat16", "dense", environment={"AE_BENCH_BF16": "1"}),
    "batch_128": Job("batch size 128", "dense", {"batch_size": 128}, in_default=False),
    "batch_500": Job("batch size 500", "dense", {"batch_size": 500}, in_default=False),
    "no_checkpoint": Job("without the notebooks' best-epoch checkpoint", "dense", checkpoint=False, in_default=False),
    "one_thread": Job(
        "one intra-op thread",
        "dense",
        environment={"TF_NUM_INTRAOP_THREADS": "1"},
        backends=("tensorflow",),
        in_default=False,
        note="TensorFlow only (TF_NUM_INTRAOP_THREADS)",
    ),
    "constant_lr": Job(
        "no cosine decay (full-length run, test MSE is the point)",
        "dense",
        {"cosine_decay": False, "full_length": True},
        backends=("jax",),
        baseline="series",
        in_default=False,
        note="on the dense model's default backend; its baseline is the series recipe run",
    ),
    "conv_reference": Job("conv model, TensorFlow without XLA (the series' choice)", backends=("tensorflow",), **_CONV),
    "conv_jit": Job(
        "conv model with XLA (jit_compile=True)", changes={"jit_compile": True}, backends=("tensorflow",), **_CONV
    ),
    "conv_jax": Job("conv model on JAX (always XLA)", backends=("jax",), baseline_backend="tensorflow", **_CONV),
}


# ----------------------------------------------------------------------------------------------------------
# The child process: one training run


def run_job(job: dict) -> dict:
    """Train one job in this process and return its record (called in a child process)."""
    from utils import course

    backend = config.backend_name()
    course.start_backend(backend)
    import keras
    import numpy as np

    from utils import metrics, models, preprocessing, recipes, training

    peak_before = references.matmul_peak_gflops(windows=job["peak_windows"]) if job["peak_windows"] else None
    if os.environ.get("AE_BENCH_BF16") == "1":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    prepared = preprocessing.prepare_mnist()
    x_train, x_val, x_test = prepared.x_train, prepared.x_val, prepared.x_test
    if job["train_images"]:
        x_train, x_val = x_train[: job["train_images"]], x_val[: job["train_images"]]
    keras.utils.set_random_seed(config.SEED)
    model = {
        "dense": lambda: models.build_dense_autoencoder()[2],
        "conv": lambda: models.build_conv_autoencoder()[2],
        "blog_shallow": references.build_keras_blog_autoencoder,
        "blog_deep": references.build_keras_blog_deep_autoencoder,
    }[job["model"]]()
    base = training.default_settings(**(recipes.CONV_SETTINGS if job["model"] == "conv" else {}))
    settings = dataclasses.replace(base, **job["changes"])
    if config.quick_mode():
        settings = dataclasses.replace(settings, epochs=2)

    evaluation_seconds, evaluation_cpu_seconds = [], []

    class EpochClock(keras.callbacks.Callback):
        """Cumulative training seconds and test MSE after every epoch; the test evaluation is left out."""

        def __init__(self):
            super().__init__()
            self.train_seconds, self.test_mse, self.mark, self.total = [], [], 0.0, 0.0

        def on_train_begin(self, logs=None):
            self.mark = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.total += time.perf_counter() - self.mark
            self.train_seconds.append(self.total)
            started, cpu_started = time.perf_counter(), time.process_time()
            output = np.asarray(self.model.predict(x_test, batch_size=2000, verbose=0), dtype="float32")
            self.test_mse.append(float(metrics.mse_per_image(x_test, output).mean()))
            evaluation_seconds.append(time.perf_counter() - started)
            evaluation_cpu_seconds.append(time.process_time() - cpu_started)
            self.mark = time.perf_counter()

    clock = EpochClock()
    started, cpu_started = time.perf_counter(), time.process_time()
    if job["notebook_path"]:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(sys.stderr):
            training.train_autoencoder(
                model,
                x_train,
                x_train,
                (x_val, x_val),
                settings,
                checkpoint_path=Path(folder) / "best.keras" if job["checkpoint"] else None,
                callbacks=[clock],
            )
    else:
        training.compile_autoencoder(model, settings, train_size=len(x_train))
        model.fit(
            x_train,
            x_train,
            validation_data=(x_val, x_val),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            callbacks=[clock],
            verbose=0,
        )
    seconds = time.perf_counter() - started - sum(evaluation_seconds)
    # The peak is measured before and after training, and the higher value is the one compared against.
    peak_after = references.matmul_peak_gflops(windows=job["peak_windows"]) if job["peak_windows"] else None
    cpu_seconds = time.process_time() - cpu_started - sum(evaluation_cpu_seconds)
    output = np.asarray(model.predict(x_test, batch_size=2000, verbose=0), dtype="float32")
    epochs = len(clock.train_seconds)
    macs = models.count_multiply_adds(model)
    work = epochs * (len(x_train) * references.training_flops_per_image(model) + len(x_val) * 2 * macs)
    return {
        "backend": backend,
        "settings": dataclasses.asdict(settings),
        "epochs": epochs,
        "train_seconds": clock.train_seconds,
        "test_mse": clock.test_mse,
        "final_mse": float(metrics.mse_per_image(x_test, output).mean()),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # all threads: less sensitive than wall time to other programs
        "images_per_second": epochs * len(x_train) / seconds,
        "gflops": work / seconds / 1e9,
        "peak_gflops": max(peak_before, peak_after) if peak_before else None,
        "peak_gflops_before_after": [peak_before, peak_after],
        "multiply_adds": macs,
        "parameters": model.count_params(),
    }


# ----------------------------------------------------------------------------------------------------------
# The parent process: what to run, in which order


def in_child(key: str, job: Job, backend: str, peak_windows: int) -> dict:
    """Run ``run_job`` in a fresh Python process on ``backend`` and return its record."""
    changes = dict(job.changes)
    full_length = changes.pop("full_length", False)
    if job.model == "dense" and key in ABLATIONS and not full_length:
        changes["epochs"] = ABLATION_EPOCHS
    if job.model == "conv" and job.train_images:
        changes["epochs"] = CONV_ABLATION_EPOCHS
    request = {
        "model": job.model,
        "changes": changes,
        "notebook_path": job.notebook_path,
        "train_images": job.train_images,
        "checkpoint": job.checkpoint,
        "peak_windows": peak_windows,
    }
    env = {**os.environ, **job.environment, "KERAS_BACKEND": backend, "PYTHONHASHSEED": "0"}
    command = [sys.executable, str(CHILD_SCRIPT), "--child", json.dumps(request)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{key} on {backend} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(backends: list[str], recipes: list[str], ablations: list[tuple[str, str]], repeats: int) -> list[tuple]:
    """The runs in order, as ``(round, kind, key, backend)``: every round runs every job once."""
    runs = []
    for round_number in range(repeats):
        for backend in backends:
            for key in recipes:
                job = RECIPES[key]
                if backend in job.backends and (job.max_rounds is None or round_number < job.max_rounds):
                    runs.append((round_number, "recipe", key, backend))
            runs += [(round_number, "ablation", key, where) for key, where in ablations if where == backend]
    return runs


def needed_ablations(chosen: list[str], backends: list[str]) -> list[tuple[str, str]]:
    """``(key, backend)`` of the chosen ablations and of the baselines they need, in table order."""
    wanted = set()
    for key in chosen:
        job = ABLATIONS[key]
        for backend in set(job.backends) & set(backends):
            wanted.add((key, backend))
            if job.baseline in ABLATIONS and (job.baseline_backend or backend) in backends:
                wanted.add((job.baseline, job.baseline_backend or backend))
    return [(key, backend) for key in ABLATIONS for backend in backends if (key, backend) in wanted]


def needed_recipes(chosen: list[str], ablations: list[tuple[str, str]]) -> list[str]:
    """The chosen recipes, with any recipe an ablation is compared against put first."""
    recipes = list(chosen)
    for key, _ in ablations:
        baseline = ABLATIONS[key].baseline
        if baseline in RECIPES and baseline not in recipes:
            recipes.insert(0, baseline)
    return recipes


def versions() -> dict[str, str]:
    """The library versions that matter here, read from the installed packages."""
    from importlib import metadata

    found = {}
    for name in ("keras", "tensorflow", "jax", "jaxlib", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    found["python"] = platform.python_version()
    return found


def measure(backends: list[str], recipes: list[str], ablations: list[tuple[str, str]], repeats: int) -> dict:
    """Run the plan one child process at a time, printing a line per run; return every record and the setup."""
    cpu, mhz, clock_estimate = references.cpu_description()
    measured = {
        "date": date.today().isoformat(),
        "quick": config.quick_mode(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mhz": mhz,
        "clock_estimate_gflops": clock_estimate,
        "versions": versions(),
        "backends": backends,
        "repeats": repeats,
        "peak_windows": 2 if config.quick_mode() else 5,
        "runs": [],
    }
    started = time.perf_counter()
    schedule = plan(backends, recipes, ablations, repeats)
    for number, (round_number, kind, key, backend) in enumerate(schedule, 1):
        job = (RECIPES if kind == "recipe" else ABLATIONS)[key]
        print(f"[{number}/{len(schedule)}] round {round_number + 1}, {backend}: {job.label} ...", flush=True)
        record = in_child(key, job, backend, peak_windows=measured["peak_windows"] if kind == "recipe" else 0)
        measured["runs"].append({"round": round_number, "kind": kind, "key": key, **record})
    measured["seconds"] = time.perf_counter() - started
    return measured
