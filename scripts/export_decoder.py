"""Export the shipped 2-D VAE decoder and the explorer's anchors for the course site's live latent explorer.

    python scripts/export_decoder.py                    # into build/site/explorer/ (what `make site` uses)
    python scripts/export_decoder.py --out DIR

It builds notebook 10's VAE, loads the shipped weights of ``variational_autoencoder_2d`` (checked by sha256,
as every notebook does; never a model some run left under outputs/), and writes two files:

- ``vae_decoder_2d.bin``: the decoder's kernels and biases, layer by layer, then the anchors, little-endian.
  The shipped weights are float16, so the kernels and biases stay float16 (exactly; a weight float16
  cannot hold would be written as float32); the anchors are float32.
- ``vae_decoder_2d.json``: the header: the layers (units, activation, where each array lies and its dtype
  and shape), the anchors' names, the sliders' range, and the sha256 of the ``.bin``, which the site's
  JavaScript (site/static/explorer.js) checks before it uses a byte of it, as utils.weights checks the
  shipped weights against their manifest.

The anchors are the ones notebook 10 gives its explorer: the latent means of the first test image of each
digit. The sliders' range is utils.widgets.latent_explorer's default, the one the notebook uses.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import config, course  # noqa: E402

# Notebook 10's backend, unless KERAS_BACKEND names another; the decode does not depend on it beyond rounding.
os.environ.setdefault("KERAS_BACKEND", "jax")
course.start_backend(config.backend_name())

import numpy as np  # noqa: E402

from utils import data, models, preprocessing, recipes, weights, widgets  # noqa: E402
from utils.files import sha256_file, write_atomically  # noqa: E402

MODEL = "variational_autoencoder_2d"
STEM = "vae_decoder_2d"
FORMAT = 1
DEFAULT_OUT = ROOT / "build" / "site" / "explorer"
ACTIVATIONS = ("relu", "sigmoid", "linear")
SLIDER_STEP = 0.05  # the step of utils.widgets.latent_explorer's sliders


def load_decoder_and_anchors():
    """The shipped decoder, the encoder, and the anchors (the latent means of the first test image of each digit)."""
    recipe = recipes.get(MODEL)
    vae = recipe.build()
    record = weights.load_into(vae, MODEL)
    if record is None:
        raise SystemExit(f"The shipped weights of {MODEL} are missing or fail their sha256 check (see above).")
    encoder, decoder = models.split_autoencoder(vae)
    _, (x_test, y_test) = data.load_mnist()
    first_of_each = [int(np.flatnonzero(y_test == digit)[0]) for digit in range(10)]
    images = preprocessing.flatten_images(preprocessing.scale_images(x_test[first_of_each]))
    latent_dim = decoder.input_shape[-1]
    anchors = np.asarray(encoder.predict(images, verbose=0))[:, :latent_dim].astype(np.float32)
    names = [f"a test {digit}" for digit in range(10)]
    return decoder, anchors, names, record


def _packed(array: np.ndarray) -> tuple[bytes, str]:
    """An array's little-endian bytes: float16 when that holds every value exactly, float32 otherwise."""
    array = np.asarray(array, dtype=np.float32)
    half = array.astype("<f2")
    if np.array_equal(half.astype(np.float32), array):
        return half.tobytes(), "float16"
    return array.astype("<f4").tobytes(), "float32"


def export(decoder, anchors: np.ndarray, names: list[str], record: dict, out: Path) -> dict:
    """Write ``STEM.bin`` and its header ``STEM.json`` into ``out``; returns the header."""
    payload, layers = bytearray(), []

    def place(array: np.ndarray, dtype: str | None = None) -> dict:
        raw, kind = _packed(array) if dtype is None else (np.asarray(array, "<f4").tobytes(), dtype)
        entry = {"offset": len(payload), "dtype": kind, "shape": list(np.shape(array))}
        payload.extend(raw)
        return entry

    for layer in decoder.layers:
        activation = layer.get_config().get("activation")
        if activation not in ACTIVATIONS or len(layer.get_weights()) != 2:
            raise SystemExit(f"{layer.name}: the explorer decodes Dense layers with {ACTIVATIONS} only.")
        kernel, bias = layer.get_weights()
        layers.append(
            {"units": int(kernel.shape[1]), "activation": activation, "kernel": place(kernel), "bias": place(bias)}
        )
    anchor_entry = place(anchors, "float32") | {"names": list(names)}
    limit = inspect.signature(widgets.latent_explorer).parameters["limit"].default
    out.mkdir(parents=True, exist_ok=True)
    binary = out / f"{STEM}.bin"
    write_atomically(binary, lambda handle: handle.write(bytes(payload)))
    header = {
        "format": FORMAT,
        "model": MODEL,
        "source": {"file": record["file"], "sha256": record["sha256"]},
        "exporter_sha256": sha256_file(Path(__file__)),
        "latent_dim": int(decoder.input_shape[-1]),
        "image_shape": [28, 28],
        "layers": layers,
        "anchors": anchor_entry,
        "slider": {"limit": float(limit), "step": SLIDER_STEP},
        "file": binary.name,
        "bytes": len(payload),
        "sha256": sha256_file(binary),
    }
    text = json.dumps(header, indent=1) + "\n"
    write_atomically(out / f"{STEM}.json", lambda handle: handle.write(text.encode()))
    return header


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the folder to write into")
    args = parser.parse_args(argv)
    decoder, anchors, names, record = load_decoder_and_anchors()
    header = export(decoder, anchors, names, record, args.out)
    kinds = sorted({layer["kernel"]["dtype"] for layer in header["layers"]})
    print(
        f"Exported the decoder of {MODEL} ({len(header['layers'])} layers, {'/'.join(kinds)}) and "
        f"{len(names)} anchors: {args.out / header['file']} ({header['bytes']:,} bytes, sha256 "
        f"{header['sha256'][:12]}...)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
