"""The data layer on the real MNIST: content, checksums, every source, and refusal of bad input."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import utils.data as data


def test_load_mnist_matches_keras_layout(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert int(x_train.max()) == 255 and int(x_train.min()) == 0


def test_labels_match_published_counts(mnist):
    (_, y_train), (_, y_test) = mnist
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_content_checksum(mnist):
    assert data.mnist_content_sha256(mnist) == data.MNIST_CONTENT_SHA256
    (x_train, y_train), test = mnist
    flipped = x_train.copy()
    flipped[123, 14, 14] ^= 1
    assert data.mnist_content_sha256(((flipped, y_train), test)) != data.MNIST_CONTENT_SHA256


def test_mirror_file_is_installed_and_verified():
    path = data.mirror_file()
    assert path is not None and path.is_file(), "run `make setup` to install the offline mirror"
    assert data.sha256_file(path) == data.MIRROR_FILE_SHA256


def test_builds_project_cache_from_mirror_offline(isolated_sources):
    dataset = data.load_mnist()
    assert data.mnist_content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    cache = data.project_cache_file()
    assert cache.is_file()
    recorded = cache.with_name(cache.name + ".sha256").read_text().split()[0]
    assert recorded == data.sha256_file(cache)
    assert not data.keras_cache_file().exists(), "the converted file must never go into the Keras cache"
    assert not list(cache.parent.glob("*.part")), "no temporary file may be left behind"


def test_tampered_mirror_is_refused(isolated_sources, monkeypatch):
    tampered = isolated_sources / "mnist.pkl.gz"
    shutil.copyfile(data.mirror_file(), tampered)
    with open(tampered, "r+b") as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setenv(data.MNIST_MIRROR_ENV, str(tampered))
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_mnist()
    assert "does not match the mirror's sha256" in str(info.value)
    assert not data.project_cache_file().exists()


def test_unpickler_refuses_anything_but_arrays(tmp_path):
    # A pickle that would call os.system when loaded by a plain unpickler.
    payload = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    evil = tmp_path / "evil.pkl.gz"
    with gzip.open(evil, "wb") as handle:
        handle.write(payload)
    with pytest.raises(data.DataIntegrityError, match="refused to load os.system"):
        data._convert_mirror(evil)


def test_corrupt_cache_is_reported_and_rebuilt(isolated_sources, capsys):
    data.load_mnist()
    cache = data.project_cache_file()
    size = cache.stat().st_size
    with open(cache, "r+b") as handle:
        handle.truncate(size // 2)
    capsys.readouterr()
    dataset = data.load_mnist()
    message = capsys.readouterr().err
    assert "corrupt" in message and str(cache) in message
    assert len(message.strip().splitlines()) == 1, "the report is one line"
    assert data.mnist_content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    assert cache.stat().st_size == size
    assert data.sha256_file(cache) == cache.with_name(cache.name + ".sha256").read_text().split()[0]


def test_cache_with_wrong_content_is_not_used(isolated_sources, mnist, capsys):
    (x_train, y_train), (x_test, y_test) = mnist
    cache = data.project_cache_file()
    cache.parent.mkdir(parents=True)
    wrong = x_train.copy()
    wrong[0] = 0
    np.savez_compressed(cache, x_train=wrong, y_train=y_train, x_test=x_test, y_test=y_test)
    cache.with_name(cache.name + ".sha256").write_text(data.sha256_file(cache) + "  x\n")
    dataset = data.load_mnist()
    assert "pixel content does not match" in capsys.readouterr().err
    assert np.array_equal(dataset[0][0][0], x_train[0])


def test_every_source_missing_gives_one_clear_error(isolated_sources, monkeypatch):
    monkeypatch.setenv(data.MNIST_MIRROR_ENV, str(isolated_sources / "not-there.pkl.gz"))
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_mnist()
    message = str(info.value)
    for source in ("Keras cache", "project cache", "offline mirror", "Keras download"):
        assert source in message
    assert "make setup" in message and data.MNIST_PATH_ENV in message
    assert not data.keras_cache_file().exists()


def test_explicit_path_is_used_and_checked(tmp_path, mnist, monkeypatch):
    (x_train, y_train), (x_test, y_test) = mnist
    good = tmp_path / "mnist.npz"
    np.savez(good, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    assert data.mnist_content_sha256(data.load_mnist(good)) == data.MNIST_CONTENT_SHA256
    monkeypatch.setenv(data.MNIST_PATH_ENV, str(tmp_path / "missing.npz"))
    with pytest.raises(data.DataUnavailableError, match="missing.npz"):
        data.load_mnist()


def test_npz_with_pickled_objects_is_refused(tmp_path):
    sneaky = tmp_path / "mnist.npz"
    np.savez(sneaky, x_train=np.array([object()], dtype=object), y_train=0, x_test=0, y_test=0)
    with pytest.raises(data.DataUnavailableError, match="not a readable MNIST"):
        data.load_mnist(sneaky)


# --------------------------------------------------------------------------- helpers


def test_scale_images(mnist):
    (x_train, _), _ = mnist
    scaled = data.scale_images(x_train[:100])
    assert scaled.dtype == np.float32 and scaled.shape == (100, 28, 28)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert np.allclose(scaled * 255, x_train[:100])
    with pytest.raises(ValueError, match="must be uint8"):
        data.scale_images(scaled)
    with pytest.raises(ValueError, match="shape"):
        data.scale_images(x_train[:5, :20])
    with pytest.raises(TypeError, match="NumPy array"):
        data.scale_images(x_train[:5].tolist())


def test_flatten_round_trip(mnist):
    (x_train, _), _ = mnist
    images = data.scale_images(x_train[:50])
    vectors = data.flatten_images(images)
    assert vectors.shape == (50, 784)
    assert np.array_equal(vectors[7], images[7].ravel())
    assert np.array_equal(data.unflatten_images(vectors), images)
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        data.flatten_images(vectors)
    with pytest.raises(ValueError, match=r"\(n, 784\)"):
        data.unflatten_images(images)


def test_gaussian_noise(mnist):
    (_, _), (x_test, _) = mnist
    clean = data.scale_images(x_test[:500])
    noisy = data.add_gaussian_noise(clean, sigma=0.5, seed=1)
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert np.array_equal(noisy, data.add_gaussian_noise(clean, sigma=0.5, seed=1))
    assert not np.array_equal(noisy, data.add_gaussian_noise(clean, sigma=0.5, seed=2))
    assert 0.1 < float(np.mean((noisy - clean) ** 2)) < 0.25
    with pytest.raises(ValueError, match="scaled to"):
        data.add_gaussian_noise(x_test[:5], sigma=0.5)
    with pytest.raises(ValueError, match="sigma"):
        data.add_gaussian_noise(clean, sigma=-1)
    for not_finite in (np.inf, np.nan):
        with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
            data.add_gaussian_noise(clean, sigma=not_finite)


def test_stratified_subset_keeps_class_shares(mnist):
    (x_train, y_train), _ = mnist
    images, labels = data.stratified_subset(x_train, y_train, 6000, seed=0)
    assert images.shape == (6000, 28, 28) and labels.shape == (6000,)
    expected = np.bincount(y_train) / len(y_train) * 6000
    assert np.all(np.abs(np.bincount(labels) - expected) <= 1)
    again, _ = data.stratified_subset(x_train, y_train, 6000, seed=0)
    assert np.array_equal(images, again)
    with pytest.raises(ValueError, match="size"):
        data.stratified_subset(x_train, y_train, 0)
    with pytest.raises(ValueError, match="same length"):
        data.stratified_subset(x_train[:10], y_train, 5)
    with pytest.raises(TypeError, match="size must be an integer, got str"):
        data.stratified_subset(x_train, y_train, "600")
    with pytest.raises(ValueError, match="at least one of every label left out"):
        data.stratified_subset(x_train, y_train, len(y_train) - 3)
    full, _ = data.stratified_subset(x_train, y_train, len(y_train))
    assert full is x_train


def test_balanced_subset(mnist):
    (x_train, y_train), _ = mnist
    images, labels = data.balanced_subset(x_train, y_train, 10, seed=3)
    assert np.bincount(labels).tolist() == [10] * 10
    assert len(images) == 100
    with pytest.raises(ValueError, match="only"):
        data.balanced_subset(x_train[:50], y_train[:50], 40)
    with pytest.raises(ValueError, match="per_class must be from 1"):
        data.balanced_subset(x_train, y_train, 0)
    with pytest.raises(TypeError, match="per_class must be an integer"):
        data.balanced_subset(x_train, y_train, 2.5)
