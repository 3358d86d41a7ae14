"""Training speed: time-to-quality of the series' default model against the Keras blog recipes.

    python benchmarks/training_speed.py            # full MNIST (about 10 minutes on 2 cores)
    AE_QUICK=1 python benchmarks/training_speed.py # a smoke run on a subset, for the tests

Every recipe runs in its own process, one after another, so that thread and precision settings
cannot leak between them and no two compete for the cores. Each reports the test MSE after every
epoch; the time to a target is the training time (evaluation excluded) at the first epoch whose
test MSE reaches it. The result is a Markdown table on stdout and in outputs/benchmarks/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import config  # noqa: E402

# name: (description, builder, settings overrides, extra environment)
RECIPES = {
    "a_series_default": ("(a) series default: 784-512-256-32, the notebooks' settings", "dense", {}, {}),
    "b_blog_shallow": (
        "(b) Keras blog: 784-32-784, Adam, batch 256, BCE, 50 epochs",
        "blog_shallow",
        {"epochs": 50, "learning_rate": 1e-3, "cosine_decay": False, "jit_compile": "auto", "patience": 1000},
        {},
    ),
    "c_blog_deep": (
        "(c) Keras blog deep: 128-64-32, Adam, batch 256, BCE, 100 epochs",
        "blog_deep",
        {
            "epochs": 100,
            "learning_rate": 1e-3,
            "cosine_decay": False,
            "jit_compile": "auto",
            "patience": 1000,
        },
        {},
    ),
}
# Ablations of the default: each changes one setting of (a). Short runs, for throughput and early error.
ABLATION_EPOCHS = 8
ABLATIONS = {
    "no_jit": ("(a) without XLA (jit_compile=False)", {"jit_compile": False}, {}),
    "conv_jit": (
        "notebook 09's conv model with XLA, 2 epochs",
        {"jit_compile": True, "epochs": 2},
        {"AE_BENCH_MODEL": "conv"},
    ),
    "conv_no_jit": (
        "notebook 09's conv model without XLA, 2 epochs",
        {"jit_compile": False, "epochs": 2},
        {"AE_BENCH_MODEL": "conv"},
    ),
    "batch_128": ("(a) with batch size 128", {"batch_size": 128}, {}),
    "batch_512": ("(a) with batch size 512", {"batch_size": 512}, {}),
    "spe_8": ("(a) with steps_per_execution=8", {"steps_per_execution": 8}, {}),
    "bf16": ("(a) with mixed_bfloat16", {}, {"AE_BENCH_BF16": "1"}),
    "one_thread": ("(a) with one intra-op thread", {}, {"TF_NUM_INTRAOP_THREADS": "1"}),
    "constant_lr": ("(a) without cosine decay (full run)", {"cosine_decay": False}, {}),
    "reference": ("(a) as is, same length as the ablations", {}, {}),
}


def run_recipe(builder: str, overrides: dict) -> dict:
    """Train one recipe in this process and return its per-epoch record (called in a child process)."""
    config.start_backend_quietly()
    import keras

    from utils import metrics, models, training

    if os.environ.get("AE_BENCH_BF16") == "1":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    prepared = training.prepare_mnist()
    keras.utils.set_random_seed(config.SEED)
    if builder == "dense" and os.environ.get("AE_BENCH_MODEL") == "conv":
        builder = "conv"
    model = {
        "dense": lambda: models.build_dense_autoencoder()[2],
        "conv": lambda: models.build_conv_autoencoder()[2],
        "blog_shallow": models.build_keras_blog_autoencoder,
        "blog_deep": models.build_keras_blog_deep_autoencoder,
    }[builder]()
    settings = training.default_settings(**overrides)
    if config.quick_mode():
        settings = training.default_settings(**{**overrides, "epochs": 2})
    training.compile_autoencoder(model, settings, train_size=len(prepared.x_train))

    class EpochClock(keras.callbacks.Callback):
        """Training seconds and test MSE after every epoch; evaluation time is left out."""

        def __init__(self):
            super().__init__()
            self.train_seconds, self.test_mse, self.started = [], [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            elapsed = time.perf_counter() - self.started
            self.train_seconds.append((self.train_seconds[-1] if self.train_seconds else 0.0) + elapsed)
            output = model.predict(prepared.x_test, batch_size=2048, verbose=0)
            self.test_mse.append(
                float(metrics.mse_per_image(prepared.x_test, output.astype("float32")).mean())
            )

    clock = EpochClock()
    callbacks = [clock]
    if settings.patience < settings.epochs:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=settings.patience, restore_best_weights=True
            )
        )
    model.fit(
        prepared.x_train,
        prepared.x_train,
        validation_data=(prepared.x_val, prepared.x_val),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    images = len(prepared.x_train) * len(clock.train_seconds)
    multiply_adds = models.count_multiply_adds(model)
    return {
        "epochs": len(clock.train_seconds),
        "train_seconds": clock.train_seconds,
        "test_mse": clock.test_mse,
        "final_mse": clock.test_mse[-1],
        "images_per_second": images / clock.train_seconds[-1],
        # Training costs about three forward passes: forward, and two matrix products in the backward pass.
        "gflops": 3 * 2 * multiply_adds * images / clock.train_seconds[-1] / 1e9,
        "multiply_adds": multiply_adds,
        "parameters": model.count_params(),
    }


def in_child(builder: str, overrides: dict, environment: dict) -> dict:
    """Run ``run_recipe`` in a fresh Python process and return its JSON result."""
    env = {**os.environ, **environment, "PYTHONHASHSEED": "0"}
    command = [sys.executable, __file__, "--child", json.dumps({"builder": builder, "overrides": overrides})]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"recipe {builder} {overrides} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_to(result: dict, target: float) -> float | None:
    """Training seconds at the first epoch whose test MSE is at or below ``target`` (None if never)."""
    for seconds, mse in zip(result["train_seconds"], result["test_mse"], strict=True):
        if mse <= target:
            return seconds
    return None


def cpu_description() -> tuple[str, float | None]:
    """The CPU's model name and its fp32 peak in GFLOP/s (AVX-512 FMA: 2 units x 16 lanes x 2), if known."""
    name, mhz, avx512 = platform.processor() or "unknown CPU", None, False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", "unknown CPU", platform.processor()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
            elif line.startswith("flags"):
                avx512 = " avx512f " in f" {line} "
    except OSError:
        pass
    if mhz is None:
        return name, None
    flops_per_cycle = 64 if avx512 else 32
    return name, os.cpu_count() * mhz / 1000 * flops_per_cycle


def render(measured: dict) -> str:
    """The Markdown report for a set of measurements (as saved in training_speed.json)."""
    results, ablations = measured["recipes"], measured["ablations"]
    ours, shallow, deep = results["a_series_default"], results["b_blog_shallow"], results["c_blog_deep"]
    peak = measured["peak_gflops"]
    lines = [
        f"Training-speed benchmark, {measured['date']}, "
        f"{'quick mode (subset, 2 epochs: not a result)' if measured['quick'] else 'full MNIST (50,000 training images)'}",
        f"CPU: {measured['cpu']}, {measured['cores']} cores; TensorFlow/Keras {measured['keras']}, "
        f"NumPy {measured['numpy']}, Python {measured['python']}",
        "",
        "| recipe | epochs | final test MSE | train s | images/s | GFLOP/s | % of peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, (label, *_rest) in RECIPES.items():
        r = results[key]
        share = f"{100 * r['gflops'] / peak:.1f}%" if peak else "n/a"
        lines.append(
            f"| {label} | {r['epochs']} | {r['final_mse']:.5f} | {r['train_seconds'][-1]:.1f} | "
            f"{r['images_per_second']:,.0f} | {r['gflops']:.1f} | {share} |"
        )
    lines += [
        "",
        "| time to reach the target test MSE | target | (a) s | reference s | reference / (a) |",
        "|---|---|---|---|---|",
    ]
    for name, reference in [("(b) blog shallow's final MSE", shallow), ("(c) blog deep's final MSE", deep)]:
        target = reference["final_mse"]
        ours_time, reference_time = time_to(ours, target), time_to(reference, target)
        ratio = f"{reference_time / ours_time:.1f}x" if ours_time and reference_time else "not reached by (a)"
        ours_text = f"{ours_time:.1f}" if ours_time else "never"
        lines.append(f"| {name} | {target:.5f} | {ours_text} | {reference_time:.1f} | {ratio} |")
    if ablations:
        lines += [
            "",
            f"Ablations: one setting changed at a time. Each is a complete {ABLATION_EPOCHS}-epoch run (the "
            "cosine schedule decays over those epochs) and is compared with (a) run the same way, except "
            "the constant-learning-rate run, which is a full run like (a) above. The two conv rows compare "
            "XLA on notebook 09's model, with the XLA run as their baseline.",
            "",
            "| variant | epochs | images/s | speed vs its baseline | test MSE at the end |",
            "|---|---|---|---|---|",
        ]
        for key, (label, *_rest) in ABLATIONS.items():
            if key not in ablations:
                continue
            r = ablations[key]
            base = ablations["conv_jit"] if key.startswith("conv") else ablations["reference"]
            lines.append(
                f"| {label} | {r['epochs']} | {r['images_per_second']:,.0f} | "
                f"{r['images_per_second'] / base['images_per_second']:.2f}x | {r['final_mse']:.5f} |"
            )
    peak_text = f"{peak:,.0f} GFLOP/s" if peak else "unknown"
    total = f" Whole benchmark: {measured['seconds']:.0f} s." if measured.get("seconds") else ""
    lines += ["", f"Peak fp32 estimate: {peak_text} (cores x clock x FLOPs per cycle).{total}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--ablations", default="all", help="comma-separated ablation names to run, 'all' (default) or 'none'"
    )
    parser.add_argument(
        "--render", metavar="JSON", help="only print the report of a saved training_speed.json"
    )
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(run_recipe(job["builder"], job["overrides"])))
        return 0
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return 0

    chosen = (
        list(ABLATIONS)
        if args.ablations == "all"
        else []
        if args.ablations == "none"
        else args.ablations.split(",")
    )
    unknown = set(chosen) - set(ABLATIONS)
    if unknown:
        parser.error(f"unknown ablations {sorted(unknown)}; choose from {', '.join(ABLATIONS)}")
    if chosen and "reference" not in chosen:
        chosen.append("reference")
    if "conv_no_jit" in chosen and "conv_jit" not in chosen:
        chosen.append("conv_jit")

    config.start_backend_quietly()
    import keras
    import numpy as np

    started = time.perf_counter()
    results = {}
    for key, (label, builder, overrides, environment) in RECIPES.items():
        print(f"running {label} ...", flush=True)
        results[key] = in_child(builder, overrides, environment)
    ablations = {}
    for key, (label, overrides, environment) in ABLATIONS.items():
        if key not in chosen:
            continue
        print(f"running {label} ...", flush=True)
        epochs = {} if key == "constant_lr" or "epochs" in overrides else {"epochs": ABLATION_EPOCHS}
        ablations[key] = in_child("dense", {**overrides, **epochs}, environment)

    cpu, peak = cpu_description()
    measured = {
        "date": date.today().isoformat(),
        "quick": config.quick_mode(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "peak_gflops": peak,
        "seconds": time.perf_counter() - started,
        "recipes": results,
        "ablations": ablations,
    }
    table = render(measured)
    print("\n" + table)
    out = config.output_dir("benchmarks") / "training_speed.md"
    from utils.data import write_atomically

    write_atomically(
        out.with_suffix(".json"), lambda handle: handle.write(json.dumps(measured, indent=1).encode())
    )
    write_atomically(out, lambda handle: handle.write(table.encode() + b"\n"))
    print(f"\nwritten to {out} (measurements in {out.with_suffix('.json').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
