"""On a backend other than TensorFlow, the Setup cell's call keeps TensorFlow out of the process, clearly."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import importlib.util, sys
from utils import config
print(config.start_backend_quietly())
import keras
keras.utils.set_random_seed(1)  # Keras would import TensorFlow here just to seed it
print("tensorflow loaded:", "tensorflow" in sys.modules)
print("lookup:", importlib.util.find_spec("tensorflow") is not None)  # PyTorch's compiler asks like this
try:
    import tensorflow
except ModuleNotFoundError as error:
    print("import refused:", error)
"""


def test_tensorflow_stays_out_on_jax_and_says_why():
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "jax"
    assert "tensorflow loaded: False" in lines
    assert "lookup: True" in lines, "a lookup must not raise: it is not an import"
    refusal = next(line for line in lines if line.startswith("import refused:"))
    assert "the Keras backend is jax; set KERAS_BACKEND=tensorflow" in refusal
