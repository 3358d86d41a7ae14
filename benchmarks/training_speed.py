"""Training speed per Keras backend: time to the Keras blog recipes' error, images/s and % of the fp32 peak.

    python benchmarks/training_speed.py     # 3 rounds, both backends, every recipe, the default ablations
    python benchmarks/training_speed.py --backends jax --recipes series,blog_deep --ablations none --repeats 1
    python benchmarks/training_speed.py --recipes none --ablations batch_250,spe_20  # ablations only
    python benchmarks/training_speed.py --render outputs/benchmarks/training_speed.json
    AE_QUICK=1 python benchmarks/training_speed.py   # a smoke run on subsets (2 epochs), for the tests

Every run is a fresh child process with ``KERAS_BACKEND`` set, so that no backend, thread or precision setting
leaks between runs, and runs go one after another so that no two compete for the cores. Runs are interleaved:
round 1 runs every job once on every backend, then round 2 does the same, and so on, so that a slow spell of a
shared machine hits all jobs alike. Each number is reported as the median and the range over the rounds, and
an ablation is called better or worse only when its range and its baseline's range do not overlap.

Each recipe run measures the fp32 peak of its backend with a 2048x2048 matmul before and after training, and
"% of peak" is taken against the higher of the two. The work counted is the matrix products actually done:
the forward pass, the weight gradients and the input gradients of every weighted layer but the first (nothing
asks for the gradient of the pixels), plus the forward pass over the validation set. Times are wall-clock
seconds of the whole training call (compilation, validation and the notebooks' callbacks included); only the
test-set evaluation after every epoch, which the benchmark adds in order to find the time to a target, is left
out. The report is a Markdown table on stdout and in outputs/benchmarks/ (Markdown and JSON, written whole).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import config  # noqa: E402

BACKENDS = ("tensorflow", "jax")
BLOG_SETTINGS = {"learning_rate": 1e-3, "cosine_decay": False, "jit_compile": "auto", "batch_size": 256}
CONV_TARGET_MSE = 0.0025
CONV_BUDGET_SECONDS = 600
PEAK_GOAL = 0.70
SOONER_GOAL = 10.0


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
        {**BLOG_SETTINGS, "epochs": 50},
        notebook_path=False,
    ),
    "blog_deep": Job(
        "Keras blog deep: 128-64-32, Adam 1e-3, batch 256, BCE, 100 epochs",
        "blog_deep",
        {**BLOG_SETTINGS, "epochs": 100},
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
    "no_checkpoint": Job(
        "without the notebooks' best-epoch checkpoint", "dense", checkpoint=False, in_default=False
    ),
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
    "conv_reference": Job(
        "conv model, TensorFlow without XLA (the series' choice)", backends=("tensorflow",), **_CONV
    ),
    "conv_jit": Job(
        "conv model with XLA (jit_compile=True)",
        changes={"jit_compile": True},
        backends=("tensorflow",),
        **_CONV,
    ),
    "conv_jax": Job(
        "conv model on JAX (always XLA)", backends=("jax",), baseline_backend="tensorflow", **_CONV
    ),
}


# ----------------------------------------------------------------------------------------------------------
# The child process: one training run


def matmul_peak_gflops(size: int = 2048, windows: int = 5, window_seconds: float = 0.4) -> float:
    """fp32 GFLOP/s of a ``size``-square matmul on the current Keras backend: the best of several windows."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32)) for _ in "ab")

    def multiply():
        return keras.ops.convert_to_numpy(keras.ops.matmul(a, b)[0, 0])

    multiply()
    multiply()
    best = 0.0
    for _ in range(windows):
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < window_seconds:
            multiply()
            count += 1
        best = max(best, 2 * size**3 * count / (time.perf_counter() - started) / 1e9)
    return best


def layer_macs(model) -> list[int]:
    """Multiply-adds of one forward pass, per weighted layer in order (nested models flattened)."""
    import keras

    from utils import models

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += layer_macs(layer)
        elif macs := models.layer_multiply_adds(layer):
            found.append(macs)
    return found


def training_flops_per_image(model) -> int:
    """Matmul FLOPs to train on one image: forward, weight gradients, input gradients of all but the 1st layer."""
    per_layer = layer_macs(model)
    return 2 * (3 * sum(per_layer) - per_layer[0])


def run_job(job: dict) -> dict:
    """Train one job in this process and return its record (called in a child process)."""
    backend = config.start_backend_quietly()
    import keras
    import numpy as np

    from utils import metrics, models, training

    peak_before = matmul_peak_gflops(windows=job["peak_windows"]) if job["peak_windows"] else None
    if os.environ.get("AE_BENCH_BF16") == "1":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    prepared = training.prepare_mnist()
    x_train, x_val, x_test = prepared.x_train, prepared.x_val, prepared.x_test
    if job["train_images"]:
        x_train, x_val = x_train[: job["train_images"]], x_val[: job["train_images"]]
    keras.utils.set_random_seed(config.SEED)
    model = {
        "dense": lambda: models.build_dense_autoencoder()[2],
        "conv": lambda: models.build_conv_autoencoder()[2],
        "blog_shallow": models.build_keras_blog_autoencoder,
        "blog_deep": models.build_keras_blog_deep_autoencoder,
    }[job["model"]]()
    base = training.default_settings(**(training.CONV_SETTINGS if job["model"] == "conv" else {}))
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
    peak_after = matmul_peak_gflops(windows=job["peak_windows"]) if job["peak_windows"] else None
    cpu_seconds = time.process_time() - cpu_started - sum(evaluation_cpu_seconds)
    output = np.asarray(model.predict(x_test, batch_size=2000, verbose=0), dtype="float32")
    epochs = len(clock.train_seconds)
    macs = models.count_multiply_adds(model)
    work = epochs * (len(x_train) * training_flops_per_image(model) + len(x_val) * 2 * macs)
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
# The parent process: scheduling and reporting


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
    command = [sys.executable, __file__, "--child", json.dumps(request)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{key} on {backend} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(
    backends: list[str], recipes: list[str], ablations: list[tuple[str, str]], repeats: int
) -> list[tuple]:
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


def time_to(run: dict, target: float) -> float | None:
    """Training seconds at the first epoch whose test MSE is at or below ``target`` (None if never)."""
    for seconds, mse in zip(run["train_seconds"], run["test_mse"], strict=True):
        if mse <= target:
            return seconds
    return None


def spread(values: list[float], digits: str = ".1f", unit: str = "") -> str:
    """``median [min-max]`` of ``values``, or just the value when they all print the same."""
    if not values:
        return "n/a"
    median, low, high = (
        f"{value:{digits}}" for value in (statistics.median(values), min(values), max(values))
    )
    return f"{median}{unit}" if low == high else f"{median}{unit} [{low}-{high}]"


def verdict(variant: list[float], baseline: list[float], higher_is_better: bool = True) -> str:
    """Say "better" or "worse" only when the two ranges do not overlap; "within the noise" otherwise."""
    if len(variant) < 2 or len(baseline) < 2:
        return "too few runs for a verdict"
    if min(variant) > max(baseline):
        return "better" if higher_is_better else "worse"
    if max(variant) < min(baseline):
        return "worse" if higher_is_better else "better"
    return "within the noise"


def runs_of(measured: dict, kind: str, key: str, backend: str) -> list[dict]:
    return [
        run for run in measured["runs"] if (run["kind"], run["key"], run["backend"]) == (kind, key, backend)
    ]


def cpu_description() -> tuple[str, float | None, float | None]:
    """The CPU's name, the clock /proc/cpuinfo reports (MHz) and the fp32 peak that clock implies, if known.

    AVX-512 with two FMA units does 2 x 16 lanes x 2 FLOPs per cycle per core, AVX2 half that. The
    reported clock is often the base clock and varies, so this is an estimate next to the measured peak.
    """
    name, mhz, avx512 = config.cpu_name(), None, False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
            elif line.startswith("flags"):
                avx512 = " avx512f " in f" {line} "
    except OSError:
        pass
    if mhz is None:
        return name, None, None
    return name, mhz, os.cpu_count() * mhz / 1000 * (64 if avx512 else 32)


def render(measured: dict) -> str:
    """The Markdown report of a set of measurements (as saved in training_speed.json)."""
    backends, repeats = measured["backends"], measured["repeats"]
    lines = [
        f"Training-speed benchmark, {measured['date']}, "
        + (
            "quick mode (subsets, 2 epochs: not a result)"
            if measured["quick"]
            else "full MNIST (50,000 training images)"
        ),
        f"CPU: {measured['cpu']}, {measured['cores']} cores; "
        + ", ".join(f"{name} {version}" for name, version in measured["versions"].items()),
        f"{repeats} round(s), interleaved; each cell is the median [min-max] over the rounds.",
    ]
    recipe_keys = [key for key in RECIPES if any(run["key"] == key for run in measured["runs"])]
    peaks = {
        backend: [
            run["peak_gflops"]
            for run in measured["runs"]
            if run["backend"] == backend and run.get("peak_gflops")
        ]
        for backend in backends
    }
    if recipe_keys:
        lines += [
            "",
            "| recipe | backend | epochs | final test MSE | train s | images/s | GFLOP/s | % of peak |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key in recipe_keys:
            for backend in backends:
                runs = runs_of(measured, "recipe", key, backend)
                if not runs:
                    continue
                share = [100 * run["gflops"] / run["peak_gflops"] for run in runs if run.get("peak_gflops")]
                lines.append(
                    f"| {RECIPES[key].label} | {backend} | {spread([run['epochs'] for run in runs], '.0f')} | "
                    f"{spread([run['final_mse'] for run in runs], '.5f')} | "
                    f"{spread([run['seconds'] for run in runs])} | "
                    f"{spread([run['images_per_second'] for run in runs], ',.0f')} | "
                    f"{spread([run['gflops'] for run in runs])} | {spread(share, '.0f', '%')} |"
                )
        lines += ["", *render_targets(measured, backends)]
    clock = measured.get("clock_estimate_gflops")
    lines += [
        f"fp32 peak, measured before and after each recipe run (2048x2048 matmul, best of "
        f"{measured['peak_windows']} windows, the higher of the two): "
        + "; ".join(
            f"{backend} {spread(values, '.0f')} GFLOP/s" for backend, values in peaks.items() if values
        )
        + (
            f". Clock-based estimate: {clock:.0f} GFLOP/s ({measured['cores']} cores x "
            f"{measured['mhz']:.0f} MHz as /proc/cpuinfo reports it x FLOPs per cycle)."
            if clock
            else "."
        ),
    ]
    ablation_keys = [key for key in ABLATIONS if any(run["key"] == key for run in measured["runs"])]
    if ablation_keys:
        lines += ["", *render_ablations(measured, backends, ablation_keys)]
    if recipe_keys:
        lines += ["", *render_goals(measured, backends)]
    if measured.get("seconds"):
        lines += ["", f"Whole benchmark: {measured['seconds'] / 60:.1f} minutes."]
    return "\n".join(lines)


def render_targets(measured: dict, backends: list[str]) -> list[str]:
    """Time for the series' model to reach each blog recipe's final test MSE, per backend, per round."""
    lines = []
    for key in ("blog_shallow", "blog_deep"):
        for backend in backends:
            ratios, series_times, blog_times, targets = pair_times(measured, key, backend, backend)
            if not targets:
                continue
            lines.append(
                f"| {RECIPES[key].label.split(':')[0]} | {backend} | {spread(targets, '.5f')} | "
                f"{spread([t for t in series_times if t is not None])} | {spread(blog_times)} | "
                f"{format_ratios(ratios, targets)} |"
            )
    header = [
        "| time to the blog recipe's final test MSE | backend | target | series s | blog s | blog / series |",
        "|---|---|---|---|---|---|",
    ]
    return [*header, *lines, ""] if lines else []


def pair_times(measured: dict, blog: str, series_backend: str, blog_backend: str):
    """Per round: the blog run's final MSE, its time to it, and the series' time to it (None if never)."""
    series = {run["round"]: run for run in runs_of(measured, "recipe", "series", series_backend)}
    ratios, series_times, blog_times, targets = [], [], [], []
    for run in runs_of(measured, "recipe", blog, blog_backend):
        if run["round"] not in series:
            continue
        target = run["test_mse"][-1]
        ours, theirs = time_to(series[run["round"]], target), time_to(run, target)
        targets.append(target)
        blog_times.append(theirs)
        series_times.append(ours)
        if ours is not None:
            ratios.append(theirs / ours)
    return ratios, series_times, blog_times, targets


def format_ratios(ratios: list[float], targets: list) -> str:
    """The ratios' spread, or how many rounds never reached the target."""
    if len(ratios) < len(targets):
        return f"not reached in {len(targets) - len(ratios)} of {len(targets)} rounds"
    return spread(ratios, ".1f", "x")


def cpu_per_image(run: dict) -> float | None:
    """CPU seconds per training image of a run (None for records without CPU time)."""
    if not run.get("cpu_seconds"):
        return None
    return run["cpu_seconds"] / (run["images_per_second"] * run["seconds"])


def render_ablations(measured: dict, backends: list[str], keys: list[str]) -> list[str]:
    """The ablation table: each variant next to its baseline, paired by round."""
    lines = [
        f"Ablations: one change at a time, in short runs interleaved with their baseline. Dense runs: "
        f"{ABLATION_EPOCHS} epochs (the cosine schedule decays over them), baseline 'dense model as is'. Conv runs: "
        f"{CONV_ABLATION_EPOCHS} epochs on {CONV_ABLATION_IMAGES:,} images, baseline TensorFlow without XLA. "
        "Speed is images/s of the whole run; 'better' or 'worse' only when the ranges do not overlap. The CPU "
        "ratio compares CPU seconds (all threads) per image, paired by round: it moves less than wall time "
        "when other programs share the cores, but it cannot see time lost waiting.",
        "",
        "| variant | backend | images/s | baseline images/s | ratio | speed | CPU ratio | test MSE | "
        "baseline test MSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for key in keys:
        job = ABLATIONS[key]
        if key == job.baseline:
            continue
        for backend in backends:
            runs = runs_of(measured, "ablation", key, backend)
            if not runs:
                continue
            base_kind = "recipe" if job.baseline in RECIPES else "ablation"
            base_backend = job.baseline_backend or backend
            baseline = {run["round"]: run for run in runs_of(measured, base_kind, job.baseline, base_backend)}
            paired = [(run, baseline[run["round"]]) for run in runs if run["round"] in baseline]
            speed = [run["images_per_second"] for run in runs]
            base_speed = [base["images_per_second"] for _, base in paired]
            ratios = [run["images_per_second"] / base["images_per_second"] for run, base in paired]
            cpu_ratios = [
                cpu_per_image(base) / cpu_per_image(run)
                for run, base in paired
                if cpu_per_image(run) and cpu_per_image(base)
            ]
            mse, base_mse = [run["final_mse"] for run in runs], [base["final_mse"] for _, base in paired]
            lines.append(
                f"| {job.label} | {backend} | {spread(speed, ',.0f')} | {spread(base_speed, ',.0f')} | "
                f"{spread(ratios, '.2f', 'x')} | {verdict(speed, base_speed)} | {spread(cpu_ratios, '.2f', 'x')} | "
                f"{spread(mse, '.5f')} | {spread(base_mse, '.5f')} |"
            )
        if job.note:
            notes.append(f"- {job.label}: {job.note}.")
    return lines + ([""] + notes if notes else [])


def render_goals(measured: dict, backends: list[str]) -> list[str]:
    """The three speed goals of issue 11, each with its measured value; "met" only if every round meets it."""
    lines = ["Goals (met only when every round meets them):"]
    for series_backend in backends:
        for blog_backend in backends:
            ratios, _, _, targets = pair_times(measured, "blog_deep", series_backend, blog_backend)
            if targets:
                met = len(ratios) == len(targets) and min(ratios) >= SOONER_GOAL
                lines.append(
                    f"- Reach the blog deep recipe's final test MSE {SOONER_GOAL:.0f}x sooner, series on "
                    f"{series_backend}, blog on {blog_backend}: {format_ratios(ratios, targets)} -> "
                    f"{'met' if met else 'not met'}."
                )
    for backend in backends:
        runs = runs_of(measured, "recipe", "series", backend)
        share = [run["gflops"] / run["peak_gflops"] for run in runs if run.get("peak_gflops")]
        if share:
            lines.append(
                f"- Whole dense training run at >= {100 * PEAK_GOAL:.0f}% of the measured fp32 matmul peak, "
                f"{backend}: {spread([100 * s for s in share], '.0f', '%')} -> "
                f"{'met' if min(share) >= PEAK_GOAL else 'not met'}."
            )
    for backend in backends:
        for run in runs_of(measured, "recipe", "conv", backend):
            reached = time_to(run, CONV_TARGET_MSE)
            in_budget = [
                mse
                for seconds, mse in zip(run["train_seconds"], run["test_mse"], strict=True)
                if seconds <= CONV_BUDGET_SECONDS
            ]
            best = (
                f"best test MSE {min(in_budget):.5f} within the budget" if in_budget else "no epoch within it"
            )
            lines.append(
                f"- Conv model at test MSE <= {CONV_TARGET_MSE} within {CONV_BUDGET_SECONDS / 60:.0f} minutes, "
                f"{backend} ({run['seconds'] / run['epochs']:.1f} s per epoch): {best}, "
                + (
                    f"{CONV_TARGET_MSE} reached after {reached:.0f} s"
                    if reached
                    else f"{CONV_TARGET_MSE} not reached"
                )
                + (" -> met." if reached and reached <= CONV_BUDGET_SECONDS else " -> not met.")
            )
    return lines


def versions() -> dict[str, str]:
    """The library versions that matter here, read from the installed packages."""
    from importlib import metadata

    found = {}
    for name in ("keras", "tensorflow", "jax", "jaxlib", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    found["python"] = platform.python_version()
    return found


def choose(text: str, known: dict | tuple, what: str, parser: argparse.ArgumentParser) -> list[str]:
    """Parse a comma-separated choice ('all', 'none' and for jobs 'default' allowed) or stop with a message."""
    if text == "all":
        return list(known)
    if text == "default" and isinstance(known, dict):
        return [key for key, job in known.items() if job.in_default]
    if text == "none":
        return []
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {', '.join(known)}")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="all", help=f"comma-separated, from {', '.join(BACKENDS)}")
    parser.add_argument(
        "--recipes", default="all", help=f"comma-separated, 'all' or 'none', from {', '.join(RECIPES)}"
    )
    parser.add_argument(
        "--ablations",
        default="default",
        help=f"comma-separated, 'default', 'all' or 'none', from {', '.join(ABLATIONS)}",
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--render", metavar="JSON", help="only print the report of a saved training_speed.json"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_job(json.loads(args.child))))
        return 0
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return 0
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    backends = choose(args.backends, BACKENDS, "backends", parser)
    recipes = choose(args.recipes, RECIPES, "recipes", parser)
    ablations = needed_ablations(choose(args.ablations, ABLATIONS, "ablations", parser), backends)
    if any(key == "constant_lr" for key, _ in ablations) and "series" not in recipes:
        recipes.insert(0, "series")
    if not backends:
        parser.error("--backends must name at least one backend")

    cpu, mhz, clock_estimate = cpu_description()
    measured = {
        "date": date.today().isoformat(),
        "quick": config.quick_mode(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mhz": mhz,
        "clock_estimate_gflops": clock_estimate,
        "versions": versions(),
        "backends": backends,
        "repeats": args.repeats,
        "peak_windows": 2 if config.quick_mode() else 5,
        "runs": [],
    }
    started = time.perf_counter()
    schedule = plan(backends, recipes, ablations, args.repeats)
    for number, (round_number, kind, key, backend) in enumerate(schedule, 1):
        job = (RECIPES if kind == "recipe" else ABLATIONS)[key]
        print(f"[{number}/{len(schedule)}] round {round_number + 1}, {backend}: {job.label} ...", flush=True)
        record = in_child(key, job, backend, peak_windows=measured["peak_windows"] if kind == "recipe" else 0)
        measured["runs"].append({"round": round_number, "kind": kind, "key": key, **record})
    measured["seconds"] = time.perf_counter() - started
    table = render(measured)
    print("\n" + table)
    from utils.data import write_atomically

    out = config.output_dir("benchmarks") / "training_speed.md"
    write_atomically(
        out.with_suffix(".json"), lambda handle: handle.write(json.dumps(measured, indent=1).encode())
    )
    write_atomically(out, lambda handle: handle.write(table.encode() + b"\n"))
    print(f"\nwritten to {out} (measurements in {out.with_suffix('.json').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
