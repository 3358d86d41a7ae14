"""Run-wide settings: quick mode, the from-scratch switch, the Keras backend, seeds and where files go."""

from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path

QUICK_ENV = "AE_QUICK"
FROM_SCRATCH_ENV = "AE_FROM_SCRATCH"
OUTPUT_ENV = "AE_OUTPUT_DIR"
CACHE_ENV = "AE_CACHE_DIR"
HEADLESS_ENV = "AE_HEADLESS"
SEED = 42
BACKENDS = ("jax", "tensorflow", "torch")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when ``AE_QUICK=1``: tests and CI use a small subset and few epochs."""
    return _flag(QUICK_ENV)


def from_scratch() -> bool:
    """True when ``AE_FROM_SCRATCH=1``: train every model in full instead of loading the shipped weights."""
    return _flag(FROM_SCRATCH_ENV)


def headless() -> bool:
    """True when ``AE_HEADLESS=1`` (set by `make run` and the tests): widgets fall back to static figures."""
    return _flag(HEADLESS_ENV)


def project_root() -> Path:
    """The repository checkout that holds ``utils/``, or the working folder when installed elsewhere."""
    here = Path(__file__).resolve().parent.parent
    if (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def output_dir(*parts: str) -> Path:
    """A folder under ``outputs/`` (or ``$AE_OUTPUT_DIR``), created on demand; quick mode gets its own."""
    base = os.environ.get(OUTPUT_ENV)
    root = Path(base).expanduser() if base else project_root() / "outputs"
    if quick_mode():
        root = root / "quick"
    folder = root.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_dir() -> Path:
    """The project's own data cache: ``$AE_CACHE_DIR`` or ``~/.cache/autoencoders-mnist``."""
    base = os.environ.get(CACHE_ENV)
    folder = Path(base).expanduser() if base else Path.home() / ".cache" / "autoencoders-mnist"
    return folder


def backend_name() -> str:
    """The Keras backend this process uses or will use: ``$KERAS_BACKEND``, else Keras's default."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _asked_by_importlib_util_find_spec() -> bool:
    """Whether the running finder was called by ``importlib.util.find_spec`` rather than by an import."""
    frame = sys._getframe(2)
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_filename in ("<frozen importlib.util>",) or frame.f_code.co_filename.endswith(
            ("importlib/util.py", "importlib\\util.py")
        ):
            return True
        frame = frame.f_back
    return False


class _TensorFlowNotTheBackend(importlib.abc.MetaPathFinder):
    """Refuses to import TensorFlow in a process whose Keras backend is another one, with a message that says why."""

    def __init__(self, backend: str):
        self.backend = backend

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            if _asked_by_importlib_util_find_spec():
                return None  # a lookup, not an import (PyTorch asks where packages live): answered as usual
            raise ModuleNotFoundError(
                f"TensorFlow is not imported here because the Keras backend is {self.backend}; "
                "set KERAS_BACKEND=tensorflow before starting Python or Jupyter to use it.",
                name=name,
            )
        return None


def start_backend_quietly() -> str:
    """Get the Keras backend ready before ``import keras``; returns the backend's name.

    On TensorFlow, TensorFlow is imported here with its C++ start-up notes (no GPU found, oneDNN on) kept
    out of the output: they are written straight to file descriptor 2 while the library loads, so that
    descriptor goes to the null device during the import only. On any other backend, TensorFlow is not
    imported at all, although Keras's ``set_random_seed`` would load it, if installed, just to seed it.
    """
    backend = backend_name()
    if backend not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if backend != "tensorflow":
        if "tensorflow" not in sys.modules and not any(
            isinstance(finder, _TensorFlowNotTheBackend) for finder in sys.meta_path
        ):
            sys.meta_path.insert(0, _TensorFlowNotTheBackend(backend))
        return backend
    if "tensorflow" in sys.modules:
        return backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow

            tensorflow.config.list_physical_devices()  # the device probe prints its "no CUDA" note here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return backend


def describe_run() -> str:
    """One line for a Setup cell: library versions, the backend, and the mode."""
    import keras
    import numpy as np

    mode = (
        "quick mode (AE_QUICK=1): small subsets and few epochs, for tests"
        if quick_mode()
        else "full mode: the whole MNIST"
    )
    if from_scratch():
        mode += "; AE_FROM_SCRATCH=1: every model trains in full here"
    return (
        f"Keras {keras.__version__} on the {keras.backend.backend()} backend, NumPy {np.__version__}; {mode}."
    )


def cpu_name() -> str:
    """The CPU's model name, for tables of measured times."""
    import platform

    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"
