"""Where the time of a dense training run goes: a timing breakdown of the series' ``fit``, per backend.

    python benchmarks/profile_training.py                 # both backends, 6 epochs, 3 interleaved rounds
    python benchmarks/profile_training.py --backends jax --epochs 4 --rounds 1

Each run is a fresh child process (as in ``training_speed.py``) that trains the series' dense model with the
notebooks' settings and callbacks (``utils.training.train_autoencoder``, as notebook 03 trains). Per epoch,
the first (which compiles) left out, the timed run splits the epoch into:

- **train steps**: time inside Keras's compiled train function, waited for until its results are ready (JAX
  dispatches asynchronously: without the wait a step would look free and its cost land elsewhere);
- **validation**: the ``evaluate`` call through which ``fit`` runs the 10,000 validation images;
- **callbacks and logging**: every callback hook of the run (early stopping, the checkpoint, NaN checks and
  Keras's progress line);
- **the rest**: Keras's Python between steps, slicing and shuffling the NumPy batches and converting them
  to backend arrays; that conversion is also timed on its own, for one epoch's batches.

An untimed run beside it shows what the waiting costs. On JAX, one compiled step is then also timed outside
``fit``, on a batch already on the device: the forward and backward pass alone, and with Adam's update, as a
share of the measured matmul peak. The report goes to stdout and to ``outputs/benchmarks/profile_training.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import references  # noqa: E402
from utils import config  # noqa: E402
from utils.files import write_atomically  # noqa: E402

PARTS = ("train steps", "validation", "callbacks and logging")
CALLBACK_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_epoch_begin", "on_epoch_end")


def timed_fit(epochs: int, timed: bool) -> dict:
    """One run of the series' training as notebook 03 does it, in this process; seconds per part per epoch,
    the first epoch (which compiles) left out. Untimed, only the epochs' lengths are taken."""
    import keras
    import numpy as np

    from utils import models, preprocessing, training

    prepared = preprocessing.prepare_mnist()
    keras.utils.set_random_seed(config.SEED)
    model = models.build_dense_autoencoder()[2]
    settings = training.default_settings(quick=False, epochs=epochs)
    clock = dict.fromkeys(PARTS, 0.0)
    epochs_seen: list[dict] = []

    def add(part, function):
        def timed_function(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            if part == "train steps" and keras.backend.backend() == "jax":
                import jax

                jax.block_until_ready(result)  # JAX returns at once and computes in the background
            clock[part] += time.perf_counter() - start
            return result

        return timed_function

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.before = time.perf_counter(), dict(clock)

        def on_epoch_end(self, epoch, logs=None):
            parts = {part: clock[part] - self.before[part] for part in PARTS}
            epochs_seen.append({"epoch": time.perf_counter() - self.start, **parts})

    if timed:
        for hook in CALLBACK_HOOKS:  # every callback of the run, Keras's progress line included
            setattr(
                keras.callbacks.CallbackList,
                hook,
                add("callbacks and logging", getattr(keras.callbacks.CallbackList, hook)),
            )
        make_train_function = model.make_train_function

        def make_timed_train_function(force=False):
            function = make_train_function(force)
            model.train_function = add("train steps", model.train_function)
            return function

        model.make_train_function = make_timed_train_function
        model.evaluate = add("validation", model.evaluate)  # fit validates through evaluate

    with open(os.devnull, "w") as quiet, tempfile.TemporaryDirectory() as folder:
        stdout, sys.stdout = sys.stdout, quiet  # the notebooks' progress line is printed, to nowhere
        try:
            training.train_autoencoder(
                model,
                prepared.x_train,
                prepared.x_train,
                (prepared.x_val, prepared.x_val),
                settings,
                checkpoint_path=Path(folder) / "best.weights.h5",
                callbacks=[Clock()],
            )
        finally:
            sys.stdout = stdout

    batches = [
        prepared.x_train[i : i + settings.batch_size] for i in range(0, len(prepared.x_train), settings.batch_size)
    ]
    start = time.perf_counter()
    converted = [keras.ops.convert_to_tensor(batch) for batch in batches]
    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(converted)
    later = epochs_seen[1:]
    result = {key: float(np.mean([epoch[key] for epoch in later])) for key in ("epoch", *PARTS)}
    return {**result, "first epoch": epochs_seen[0]["epoch"], "conversion": time.perf_counter() - start}


def step_split(batch_size: int = 256, repeats: int = 200) -> dict:
    """JAX only: one compiled step taken apart, the gradient alone against the gradient and Adam's update."""
    import jax
    import keras
    import numpy as np

    from utils import models, preprocessing

    prepared = preprocessing.prepare_mnist()
    keras.utils.set_random_seed(config.SEED)
    model = models.build_dense_autoencoder()[2]
    optimizer = keras.optimizers.Adam(2e-3)
    optimizer.build(model.trainable_variables)
    trainable = [variable.value for variable in model.trainable_variables]
    fixed = [variable.value for variable in model.non_trainable_variables]
    slots = [variable.value for variable in optimizer.variables]
    images = jax.device_put(prepared.x_train[:batch_size])

    def loss(weights, x):
        output, _ = model.stateless_call(weights, fixed, x)
        return keras.losses.binary_crossentropy(x, output).mean()

    gradient = jax.jit(jax.grad(loss))

    @jax.jit
    def step(weights, slots, x):
        new_weights, new_slots = optimizer.stateless_apply(slots, gradient(weights, x), weights)
        return new_weights, new_slots

    def seconds(function) -> float:
        jax.block_until_ready(function())
        best = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats // 5):
                result = function()
            jax.block_until_ready(result)
            best.append((time.perf_counter() - start) / (repeats // 5))
        return float(np.min(best))

    forward_backward = seconds(lambda: gradient(trainable, images))
    whole = seconds(lambda: step(trainable, slots, images))
    return {
        "gradient": forward_backward,
        "step": whole,
        "flops": references.training_flops_per_image(model) * batch_size,
        "peak": references.matmul_peak_gflops() * 1e9,
    }


def in_child(call: str, backend: str) -> dict:
    """``call`` (a function of this module, with its arguments) in a fresh process on ``backend``."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r}); "
        "from utils import course; course.start_backend(sys.argv[1]); "
        f"from benchmarks import profile_training; print('RESULT', json.dumps(profile_training.{call}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, backend],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend},
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{call} on {backend} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def measure(backends: list[str], epochs: int, rounds: int) -> dict:
    """Interleaved rounds: each round runs every backend's untimed and timed run, and JAX's step split."""
    results: dict = {backend: {"untimed": [], "timed": [], "split": []} for backend in backends}
    for _ in range(rounds):
        for backend in backends:
            results[backend]["untimed"].append(in_child(f"timed_fit({epochs}, False)", backend))
            results[backend]["timed"].append(in_child(f"timed_fit({epochs}, True)", backend))
            if backend == "jax":
                results[backend]["split"].append(in_child("step_split()", backend))
    return results


def spread(values: list[float], digits: int = 3, unit: str = " s") -> str:
    """The median, and the range in brackets when the rounds differ in the digits shown."""
    low, middle, high = (f"{value:.{digits}f}" for value in (min(values), statistics.median(values), max(values)))
    return f"{middle}{unit}" + ("" if low == high else f" [{low}-{high}]")


def report(results: dict, epochs: int) -> str:
    rounds = len(next(iter(results.values()))["timed"])
    lines = [
        f"Where a dense training epoch goes: the series' model, settings and callbacks (notebook 03), "
        f"{'a quick-mode subset (not a result)' if config.quick_mode() else 'full MNIST'}, "
        f"{epochs} epochs, per epoch after the first; median [min-max] over {rounds} interleaved rounds",
        "",
        "| backend | epoch, untimed | epoch, timed | train steps | validation | callbacks and logging | the rest "
        "| NumPy to device (inside the rest) | first epoch (compiles) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, runs in results.items():
        timed = runs["timed"]

        def column(key: str, timed: list = timed) -> str:
            shares = [run[key] / run["epoch"] * 100 for run in timed]
            return f"{spread([run[key] for run in timed])} ({spread(shares, 0, '%')})"

        rest = [{"rest": run["epoch"] - sum(run[part] for part in PARTS), "epoch": run["epoch"]} for run in timed]
        shares = [run["rest"] / run["epoch"] * 100 for run in rest]
        lines.append(
            f"| {backend} | {spread([run['epoch'] for run in runs['untimed']])} | {spread([run['epoch'] for run in timed])} "
            f"| {column('train steps')} | {column('validation')} | {column('callbacks and logging')} "
            f"| {spread([run['rest'] for run in rest])} ({spread(shares, 0, '%')}) "
            f"| {spread([run['conversion'] for run in timed])} | {spread([run['first epoch'] for run in timed], 2)} |"
        )
    splits = results.get("jax", {}).get("split")
    if splits:
        ms = lambda key: spread([1000 * split[key] for split in splits], 2, " ms")  # noqa: E731
        share = lambda key: spread([100 * s["flops"] / s[key] / s["peak"] for s in splits], 0, "%")  # noqa: E731
        lines += [
            "",
            f"JAX's compiled step on one device-resident batch of 256, outside fit (best of 5 windows): the forward "
            f"and backward pass alone {ms('gradient')}, at {share('gradient')} of the measured matmul peak "
            f"({spread([s['peak'] / 1e9 for s in splits], 0, ' GFLOP/s')}); with Adam's update {ms('step')}, at "
            f"{share('step')}.",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="jax,tensorflow")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = measure(args.backends.split(","), args.epochs, args.rounds)
    text = report(results, args.epochs)
    print(text)
    path = config.output_dir("benchmarks") / "profile_training.md"
    write_atomically(path, lambda handle: handle.write(text.encode() + b"\n"))
    write_atomically(path.with_suffix(".json"), lambda handle: handle.write(json.dumps(results, indent=1).encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
