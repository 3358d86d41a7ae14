"""The Fashion-MNIST loader (notebook 08): Debian's files, checksums, and the error when it is missing."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import utils.data as data


@pytest.fixture
def fashion_copy(tmp_path):
    """A private copy of the installed Fashion-MNIST files."""
    if not data.FASHION_DEBIAN_DIR.is_dir():
        pytest.fail("Debian's dataset-fashion-mnist is not installed; `make setup` installs it as root.")
    folder = tmp_path / "fashion"
    shutil.copytree(data.FASHION_DEBIAN_DIR, folder)
    return folder


def test_loads_real_fashion_mnist(isolated_sources):
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:5].tolist() == [9, 0, 0, 3, 0]


def test_tampered_file_is_refused(isolated_sources, fashion_copy, monkeypatch):
    target = fashion_copy / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(target.read_bytes()))
    content[100] = (content[100] + 1) % 10
    target.write_bytes(gzip.compress(bytes(content)))
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", fashion_copy)
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_fashion_mnist()
    assert "does not match the Fashion-MNIST checksum" in str(info.value)


def test_folder_override_is_used(isolated_sources, fashion_copy, monkeypatch):
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", isolated_sources / "nowhere")
    monkeypatch.setenv(data.FASHION_DIR_ENV, str(fashion_copy))
    (_, y_train), _ = data.load_fashion_mnist()
    assert len(y_train) == 60000


def test_missing_everywhere_says_how_to_fix(isolated_sources, monkeypatch):
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", isolated_sources / "nowhere")
    monkeypatch.delenv(data.FASHION_DIR_ENV, raising=False)
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "Keras cache" in message and "Keras download" in message
