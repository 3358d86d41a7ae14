"""Run-wide settings: quick mode, the from-scratch switch, headless runs, the seed, and where files go."""

import os
import sys
import tempfile
from pathlib import Path

QUICK_ENV = "AE_QUICK"
FROM_SCRATCH_ENV = "AE_FROM_SCRATCH"
OUTPUT_ENV = "AE_OUTPUT_DIR"
CACHE_ENV = "AE_CACHE_DIR"
HEADLESS_ENV = "AE_HEADLESS"
SEED = 42


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
    return here if (here / "notebooks").is_dir() else Path.cwd()


def output_dir(*parts: str) -> Path:
    """A folder under ``outputs/`` (or ``$AE_OUTPUT_DIR``; quick mode gets its own), made if it can be.

    It never raises: when the folder cannot be made, the writer that needs it says so (``outputs_problem``).
    """
    base = os.environ.get(OUTPUT_ENV)
    root = Path(base).expanduser() if base else project_root() / "outputs"
    folder = (root / "quick" if quick_mode() else root).joinpath(*parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return folder


_outputs_problems: dict[Path, str | None] = {}


def outputs_problem() -> str | None:
    """Why nothing can be saved in the outputs folder, as one line (checked once per folder), or None."""
    folder = output_dir()
    if folder not in _outputs_problems:
        _outputs_problems[folder] = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as error:
            _outputs_problems[folder] = (
                f"The outputs folder {folder} cannot be written ({error.strerror or type(error).__name__}): "
                "figures and metrics are not saved, and models stay in memory. To keep them, set "
                f"{OUTPUT_ENV} to a writable folder (in a notebook: %env {OUTPUT_ENV}=/tmp/ae-outputs) and run again."
            )
    return _outputs_problems[folder]


def cache_dir() -> Path:
    """The project's own data cache: ``$AE_CACHE_DIR`` or ``~/.cache/autoencoders-mnist``."""
    base = os.environ.get(CACHE_ENV)
    return Path(base).expanduser() if base else Path.home() / ".cache" / "autoencoders-mnist"


def backend_name() -> str:
    """The Keras backend this process uses or will use: ``$KERAS_BACKEND``, else Keras's default."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")
