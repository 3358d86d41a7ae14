"""Run-wide settings: quick mode, seeds and where generated files go."""

from __future__ import annotations

import os
from pathlib import Path

QUICK_ENV = "AE_QUICK"
OUTPUT_ENV = "AE_OUTPUT_DIR"
CACHE_ENV = "AE_CACHE_DIR"
SEED = 42


def quick_mode() -> bool:
    """True when ``AE_QUICK=1``: tests and CI use a small subset and few epochs."""
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    return value in {"1", "true", "yes", "on"}


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


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up notes (no GPU found, oneDNN on) kept out of the output.

    Notebooks call it in their Setup cell, before ``import keras``.

    Those lines are written straight to file descriptor 2 while the library loads, before any
    logging setting applies, so they are sent to the null device during the import only.
    Warnings and errors raised later still show as usual.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import sys

    if "tensorflow" in sys.modules:
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow

            tensorflow.config.list_physical_devices()  # the device probe prints its "no CUDA" note here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
