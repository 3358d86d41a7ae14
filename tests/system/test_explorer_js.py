"""The site's live latent explorer decodes as Keras does: its JavaScript, run with Node, against Keras's decoder.

scripts/export_decoder.py writes the shipped 2-D VAE decoder and the anchors to a .bin with a JSON header;
site/static/explorer.js reads them (after checking the .bin's SHA-256) and decodes with a plain forward pass.
Keras's side is built here independently of the exporter: notebook 10's VAE with the shipped weights.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT

EXPLORER_JS = ROOT / "site" / "static" / "explorer.js"
STEM = "vae_decoder_2d"
# The decoded pixels lie in [0, 1]. Keras sums in float32 (512 products in the last layer, in an order that
# depends on the backend's kernels), the script in double precision; 1e-5 is about a hundred float32 steps
# at 1.0 and far below one of the canvas's 256 grey levels (0.0039).
TOLERANCE = 1e-5

NODE_DECODE = r"""
const fs = require("fs");
const explorer = require(process.argv[1]);
const [header, binary] = [JSON.parse(fs.readFileSync(process.argv[2])), fs.readFileSync(process.argv[3])];
const points = JSON.parse(fs.readFileSync(0, "utf8"));
const decoder = explorer.parseDecoder(header, binary);
const b64 = (floats) => Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
const images = points.map((point) => explorer.decode(decoder, point));
const flat = new Float32Array(images.length * 784);
images.forEach((image, i) => flat.set(image, i * 784));
process.stdout.write(JSON.stringify({
  images: b64(flat),
  layers: decoder.layers.map((l) => ({ kernel: b64(l.kernel), bias: b64(l.bias), activation: l.activation })),
  anchors: b64(decoder.anchors),
}));
"""


def node(script: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    assert shutil.which("node"), "Node is missing: the site's explorer is tested with Node (`node --version`)."
    return subprocess.run(["node", "-e", script, *args], input=stdin, capture_output=True, text=True, timeout=120)


def floats(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The exporter's files, written the way `make site` writes them."""
    out = tmp_path_factory.mktemp("explorer")
    command = [sys.executable, str(ROOT / "scripts" / "export_decoder.py"), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    header = json.loads((out / f"{STEM}.json").read_text())
    return header, out / f"{STEM}.json", out / header["file"]


@pytest.fixture(scope="module")
def keras_vae(mnist):
    """Notebook 10's 2-D VAE with the shipped weights, and the latent means of the first test image of each digit."""
    from utils import models, preprocessing, recipes, weights

    vae = recipes.get("variational_autoencoder_2d").build()
    assert weights.load_into(vae, "variational_autoencoder_2d") is not None
    encoder, decoder = models.split_autoencoder(vae)
    _, (x_test, y_test) = mnist
    first = [int(np.flatnonzero(y_test == digit)[0]) for digit in range(10)]
    images = preprocessing.flatten_images(preprocessing.scale_images(x_test[first]))
    return decoder, np.asarray(encoder.predict(images, verbose=0))[:, :2]


def test_the_header_records_the_files_sha256_and_the_shipped_weights(exported):
    from utils import weights

    header, _, binary = exported
    assert header["sha256"] == hashlib.sha256(binary.read_bytes()).hexdigest()
    assert header["bytes"] == binary.stat().st_size
    assert header["source"]["sha256"] == weights.entry("variational_autoencoder_2d")["sha256"]
    assert [layer["units"] for layer in header["layers"]] == [256, 512, 784]
    assert [layer["activation"] for layer in header["layers"]] == ["relu", "relu", "sigmoid"]
    assert binary.stat().st_size < 2_500_000, "the explorer's file should stay small enough for a page"


def test_the_javascript_decodes_as_keras_does(exported, keras_vae):
    header, header_path, binary = exported
    decoder, anchors = keras_vae
    limit = header["slider"]["limit"]
    axis = np.linspace(-limit, limit, 15, dtype=np.float32)
    grid = np.array([[a, b] for a in axis for b in axis], dtype=np.float32)
    steps = np.linspace(0, 1, 11, dtype=np.float32)[:, None]
    walk = (1 - steps) * anchors[2] + steps * anchors[7]  # notebook 10's exercise: from a 2 to a 7
    points = np.concatenate([grid, anchors.astype(np.float32), walk]).astype(np.float32)
    result = node(NODE_DECODE, str(EXPLORER_JS), str(header_path), str(binary), stdin=json.dumps(points.tolist()))
    assert result.returncode == 0, result.stderr[-3000:]
    decoded = json.loads(result.stdout)

    # The numbers the script uses are Keras's decoder weights, exactly, and the notebook's anchors.
    arrays = decoder.get_weights()
    for layer, kernel, bias in zip(decoded["layers"], arrays[::2], arrays[1::2], strict=True):
        np.testing.assert_array_equal(floats(layer["kernel"]), kernel.astype(np.float32).ravel())
        np.testing.assert_array_equal(floats(layer["bias"]), bias.astype(np.float32))
    np.testing.assert_allclose(floats(decoded["anchors"]).reshape(10, 2), anchors, atol=1e-6, rtol=0)

    js = floats(decoded["images"]).reshape(len(points), 784)
    expected = np.asarray(decoder.predict(points, verbose=0))
    difference = np.abs(js - expected).max()
    assert difference <= TOLERANCE, f"the JavaScript decode differs from Keras's by up to {difference:.2e}"


def test_the_javascript_refuses_a_file_that_fails_its_sha256(exported, tmp_path):
    header, header_path, binary = exported
    damaged = bytearray(binary.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01  # one bit of one weight
    (tmp_path / binary.name).write_bytes(bytes(damaged))
    result = node(NODE_DECODE, str(EXPLORER_JS), str(header_path), str(tmp_path / binary.name), stdin="[[0, 0]]")
    assert result.returncode != 0
    assert "fails its sha256 check" in result.stderr and "it is not used" in result.stderr


def test_the_javascript_sha256_is_sha256():
    samples = [b"", b"abc", bytes(55), bytes(56), bytes(range(256)) * 4 + b"x", np.random.default_rng(0).bytes(100_003)]
    script = (
        'const {sha256Hex} = require(process.argv[1]); const input = JSON.parse(require("fs").readFileSync(0));'
        'process.stdout.write(JSON.stringify(input.map((s) => sha256Hex(Buffer.from(s, "base64")))));'
    )
    started = time.perf_counter()
    result = node(script, str(EXPLORER_JS), stdin=json.dumps([base64.b64encode(s).decode() for s in samples]))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [hashlib.sha256(s).hexdigest() for s in samples]
    assert time.perf_counter() - started < 30
