"""What the series is measured against: the Keras blog's two recipes, the CPU, its fp32 matmul peak, and the
matrix-product FLOPs of training a model.

Keras is imported inside the functions that need it, so that importing this module loads no backend
(scripts/run_series.py imports it for ``cpu_name`` in a process that runs no model).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from utils.checks import IMAGE_PIXELS

CPUINFO = Path("/proc/cpuinfo")
BLOG_LATENT_DIM = 32
BLOG_DEEP_UNITS = (128, 64, 32, 64, 128)
# How the blog trains both models: Adam at 1e-3 without a schedule, batches of 256 (BCE, the series' loss too).
BLOG_SETTINGS = {"learning_rate": 1e-3, "cosine_decay": False, "jit_compile": "auto", "batch_size": 256}


# ----------------------------------------------------------------------------------------------------------
# The Keras blog's recipes ("Building Autoencoders in Keras")


def build_keras_blog_autoencoder(latent_dim: int = BLOG_LATENT_DIM):
    """Reference recipe (b): the Keras blog's shallow 784-32-784 autoencoder."""
    import keras

    from utils import checks

    checks.integer(latent_dim, "latent_dim", 1, IMAGE_PIXELS)
    return keras.Sequential(
        [
            keras.Input(shape=(IMAGE_PIXELS,)),
            keras.layers.Dense(latent_dim, activation="relu"),
            keras.layers.Dense(IMAGE_PIXELS, activation="sigmoid"),
        ],
        name="keras_blog_shallow",
    )


def build_keras_blog_deep_autoencoder():
    """Reference recipe (c): the Keras blog's deep 784-128-64-32-64-128-784 autoencoder."""
    import keras

    return keras.Sequential(
        [keras.Input(shape=(IMAGE_PIXELS,))]
        + [keras.layers.Dense(units, activation="relu") for units in BLOG_DEEP_UNITS]
        + [keras.layers.Dense(IMAGE_PIXELS, activation="sigmoid")],
        name="keras_blog_deep",
    )


# ----------------------------------------------------------------------------------------------------------
# The machine


def cpu_name() -> str:
    """The CPU's model name, for tables of measured times."""
    for line in CPUINFO.read_text().splitlines() if CPUINFO.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_description() -> tuple[str, float | None, float | None]:
    """The CPU's name, the clock /proc/cpuinfo reports (MHz) and the fp32 peak that clock implies, if known.

    AVX-512 with two FMA units does 2 x 16 lanes x 2 FLOPs per cycle per core, AVX2 half that. The
    reported clock is often the base clock and varies, so this is an estimate next to the measured peak.
    """
    name, mhz, avx512 = cpu_name(), None, False
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
            elif line.startswith("flags"):
                avx512 = " avx512f " in f" {line} "
    except OSError:
        pass
    if mhz is None:
        return name, None, None
    return name, mhz, os.cpu_count() * mhz / 1000 * (64 if avx512 else 32)


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


# ----------------------------------------------------------------------------------------------------------
# The work of training


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
