"""The Setup cell's one call: the Keras backend, started quietly, the plot style, and a line about the run."""

import importlib.util
import os
import sys

from utils import config

BACKENDS = ("jax", "tensorflow", "torch")


class SetupError(Exception):
    """A setup problem, which Jupyter and Colab show as its one-line message, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"SetupError: {self}"]


def installed_backends() -> list[str]:
    """The Keras backends whose library this Python can import."""
    return [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


def check_backend(backend: str) -> None:
    """Raise SetupError, in one line that says what to do, unless ``backend`` is a Keras backend installed here."""
    installed = ", ".join(installed_backends()) or "none"
    if backend not in BACKENDS:
        raise SetupError(
            f"KERAS_BACKEND is {backend!r}, which is not a Keras backend: set it to one of "
            f"{', '.join(BACKENDS)} (installed here: {installed}), or unset it, then restart the kernel."
        )
    if backend not in installed_backends():
        how = "`make test-torch` builds .venv-torch with it" if backend == "torch" else f"`pip install {backend}`"
        raise SetupError(
            f"KERAS_BACKEND is {backend!r}, but {backend} is not installed here (installed: {installed}). "
            f"Install it ({how}), or unset KERAS_BACKEND, then restart the kernel."
        )


def start_backend(backend: str) -> None:
    """Get ``backend`` ready before ``import keras``, without TensorFlow's start-up notes.

    TensorFlow writes its C++ notes (no GPU, oneDNN) straight to file descriptor 2 while it loads, so that
    descriptor goes to the null device during the import. Any other backend keeps TensorFlow out of the
    process (Keras would load it only to seed it): ``None`` in ``sys.modules`` makes ``import tensorflow``
    fail and ``importlib.util.find_spec`` answer "not there".
    """
    if backend != "tensorflow":
        sys.modules.setdefault("tensorflow", None)
        return
    if "tensorflow" in sys.modules:
        return
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


def describe_run() -> str:
    """One line: the library versions, the backend and the mode."""
    import keras
    import numpy as np

    mode = "full mode: the whole MNIST"
    if config.quick_mode():
        mode = "quick mode (AE_QUICK=1): small subsets and few epochs, for tests"
    if config.from_scratch():
        mode += "; AE_FROM_SCRATCH=1: every model trains in full here"
    return f"Keras {keras.__version__} on the {keras.backend.backend()} backend, NumPy {np.__version__}; {mode}."


def setup(backend: str, cpu_devices: int = 1) -> None:
    """Use ``backend`` unless ``$KERAS_BACKEND`` names another, start it, set the plot style, say what runs.

    ``cpu_devices=2`` shows JAX this CPU as two devices (notebook 12); JAX reads that once, when it starts.
    """
    os.environ.setdefault("KERAS_BACKEND", backend)
    chosen = config.backend_name()
    check_backend(chosen)
    if "keras" in sys.modules and os.environ["KERAS_BACKEND"] != chosen:
        print(f"Keras already runs on {chosen} in this kernel; restart the kernel to change the backend.")
    if cpu_devices > 1:
        os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={cpu_devices}")
        # Spare threads for JAX's CPU runtime: at every gradient exchange each device holds a thread while it
        # waits for the others, and with only as many threads as devices they can wait on each other for good.
        os.environ.setdefault("PJRT_NPROC", str((os.cpu_count() or 1) + cpu_devices))
    start_backend(chosen)
    try:
        import keras  # noqa: F401 - the backend loads here, so that a missing library is reported here

        from utils import plotting
    except ModuleNotFoundError as error:
        raise SetupError(
            f"{error.name} is not installed, and the series needs it: run `make setup` in the repository, "
            "or `pip install -r requirements.txt`, then restart the kernel."
        ) from None
    plotting.set_style()
    plotting.show_alt_text_in_notebooks()
    print(describe_run())
    if config.outputs_problem() is not None:
        print(config.outputs_problem())
