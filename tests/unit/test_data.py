"""MNIST and Fashion-MNIST on the real files: content, checksums, every source, and the faults of learners' machines.

A read-only home and a full disk are made real in a private mount namespace (`unshare`), because root,
which runs CI, ignores chmod. Those child processes also get a network namespace of their own: no network.
Without root, `unshare --map-root-user` gives the same in a user namespace.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.unit.support import child_env, one_line
from utils import config, data
from utils.files import sha256_file

# --------------------------------------------------------------------------- helpers


def run_in_private_namespace(mount_commands: str, code: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``python -c code args`` after ``mount_commands`` in private mount and network namespaces.

    Mounts made there vanish with the process and are never seen by the rest of the machine.
    """
    if shutil.which("unshare") is None:
        pytest.fail("this test needs util-linux's unshare (Linux) to make a folder read-only for root")
    unshare = ["unshare", "--mount", "--net", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare.insert(1, "--map-root-user")
    script = f'{mount_commands}\nexec "$@"'
    command = [*unshare, "sh", "-euc", script, "sh", sys.executable, "-c", code, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


LOAD_MNIST = """
import os, sys
from utils import data
probe, cache = sys.argv[1], sys.argv[2]
try:
    open(probe, "w").close()
    print("probe: writable")
except OSError as exc:
    print("probe:", exc.strerror)
dataset = data.load_mnist()
print("content:", data.content_sha256(dataset))
print("cache folder:", sorted(os.listdir(cache)) if os.path.isdir(cache) else "absent")
"""


@pytest.fixture(scope="module")
def converted_mirror():
    """The real mirror converted once (5 s); the tests of cache faults reuse it instead of converting again."""
    return data._convert_mirror(data.mirror_file())


@pytest.fixture
def fast_mirror(isolated_sources, converted_mirror, monkeypatch):
    """Isolated sources whose mirror, still sha256-checked on disk, skips the repeated pickle conversion."""
    monkeypatch.setattr(data, "_convert_mirror", lambda path: converted_mirror)
    return isolated_sources


# --------------------------------------------------------------------------- MNIST: content


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
    assert data.content_sha256(mnist) == data.MNIST_CONTENT_SHA256
    (x_train, y_train), test = mnist
    flipped = x_train.copy()
    flipped[123, 14, 14] ^= 1
    assert data.content_sha256(((flipped, y_train), test)) != data.MNIST_CONTENT_SHA256


# --------------------------------------------------------------------------- MNIST: the sources


def test_mirror_file_is_installed_and_verified():
    path = data.mirror_file()
    assert path is not None and path.is_file(), "run `make setup` to install the offline mirror"
    assert sha256_file(path) == data.MIRROR_FILE_SHA256


def test_builds_project_cache_from_mirror_offline(isolated_sources, capsys):
    dataset = data.load_mnist()
    assert data.content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    cache = data.project_cache_file()
    assert cache.is_file() and cache.parent == isolated_sources / "cache"
    assert sorted(path.name for path in cache.parent.iterdir()) == [cache.name], (
        "one file: no .sha256 sidecar, no temporary file left behind"
    )
    assert not list((isolated_sources / "keras-home").rglob("*.npz")), (
        "the converted file never goes into Keras's cache"
    )
    assert capsys.readouterr().err == ""
    again = data.load_mnist()
    assert data.content_sha256(again) == data.MNIST_CONTENT_SHA256
    assert capsys.readouterr().err == "", "a good cache loads quietly"


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


def test_corrupt_cache_is_reported_and_rebuilt(fast_mirror, mnist, capsys):
    data.save_project_cache(mnist)
    cache = data.project_cache_file()
    size = cache.stat().st_size
    with open(cache, "r+b") as handle:
        handle.truncate(size // 2)
    dataset = data.load_mnist()
    message = one_line(capsys.readouterr().err)
    assert f"MNIST cache {cache} is corrupt (" in message and message.endswith("removing it and rebuilding.")
    assert data.content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    assert cache.stat().st_size == size, "the cache was written again in full"
    data.load_mnist()
    assert capsys.readouterr().err == "", "once rebuilt, loading is quiet"


def test_cache_with_wrong_content_is_not_used(fast_mirror, mnist, capsys):
    (x_train, y_train), (x_test, y_test) = mnist
    cache = data.project_cache_file()
    cache.parent.mkdir(parents=True)
    wrong = x_train.copy()
    wrong[0] = 0
    np.savez_compressed(cache, x_train=wrong, y_train=y_train, x_test=x_test, y_test=y_test)
    dataset = data.load_mnist()
    message = one_line(capsys.readouterr().err)
    assert "pixel content does not match the MNIST checksum" in message and "rebuilding" in message
    assert np.array_equal(dataset[0][0][0], x_train[0])
    assert np.array_equal(data._read_npz(cache)[0][0][0], x_train[0]), "the rebuilt cache holds the real digit"


def test_every_source_missing_gives_one_clear_error(isolated_sources, monkeypatch):
    monkeypatch.setenv(data.MNIST_MIRROR_ENV, str(isolated_sources / "not-there.pkl.gz"))
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_mnist()
    message = str(info.value)
    attempts = [line for line in message.splitlines() if line.startswith("  - ") and ":" in line][:3]
    assert [line.split(":")[0] for line in attempts] == [
        "  - project cache",
        "  - offline mirror",
        "  - Keras (cache or download)",
    ], "every source is tried, in order, and named"
    assert "not-there.pkl.gz does not exist" in message
    assert "make setup" in message and data.MNIST_PATH_ENV in message
    assert not list((isolated_sources / "keras-home").rglob("*.npz")), "nothing was downloaded"


def assert_keras_copy_is_checked(monkeypatch, load, dataset, checksum: str, refusal: str) -> None:
    """With Keras as the only source left, ``load`` returns its good copy and refuses one with a pixel flipped."""
    monkeypatch.setattr(data, "_from_keras", lambda name: dataset)
    assert data.content_sha256(load()) == checksum
    (x_train, y_train), test = dataset
    flipped = x_train.copy()
    flipped[0, 14, 14] ^= 1
    monkeypatch.setattr(data, "_from_keras", lambda name: ((flipped, y_train), test))
    with pytest.raises(data.DataUnavailableError, match=refusal):
        load()


def test_keras_is_the_last_source_and_is_checked_too(isolated_sources, mnist, monkeypatch):
    monkeypatch.setenv(data.MNIST_MIRROR_ENV, str(isolated_sources / "not-there.pkl.gz"))
    refusal = "pixel content does not match the MNIST checksum"
    assert_keras_copy_is_checked(monkeypatch, data.load_mnist, mnist, data.MNIST_CONTENT_SHA256, refusal)


def test_explicit_path_is_used_and_checked(tmp_path, mnist, monkeypatch):
    (x_train, y_train), (x_test, y_test) = mnist
    good = tmp_path / "mnist.npz"
    np.savez(good, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    assert data.content_sha256(data.load_mnist(good)) == data.MNIST_CONTENT_SHA256
    monkeypatch.setenv(data.MNIST_PATH_ENV, str(tmp_path / "missing.npz"))
    with pytest.raises(data.DataUnavailableError, match="missing.npz"):
        data.load_mnist()


def test_npz_with_pickled_objects_is_refused(tmp_path):
    sneaky = tmp_path / "mnist.npz"
    np.savez(sneaky, x_train=np.array([object()], dtype=object), y_train=0, x_test=0, y_test=0)
    with pytest.raises(data.DataUnavailableError, match="not a readable MNIST"):
        data.load_mnist(sneaky)


def test_load_mnist_from_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_mnist(tmp_path)
    assert f"{tmp_path} is a folder, not a file" in str(info.value)
    assert "does not exist" not in str(info.value)


# --------------------------------------------------------------------------- MNIST: the cache cannot be written


def test_read_only_home_still_gives_verified_mnist(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(HOME=home, KERAS_HOME=home / ".keras")
    mounts = f'mount --bind "{home}" "{home}"\nmount -o remount,bind,ro "{home}"'
    done = run_in_private_namespace(mounts, LOAD_MNIST, str(home / "probe"), str(home / ".cache"), env=env)
    assert done.returncode == 0, done.stderr
    assert "probe: Read-only file system" in done.stdout, "the home folder must really be read-only"
    assert f"content: {data.MNIST_CONTENT_SHA256}" in done.stdout
    warning = one_line(done.stderr)
    assert "could not be written (Read-only file system" in warning
    assert "set AE_CACHE_DIR to a writable folder" in warning
    assert not list(home.iterdir()), "nothing may be left in the read-only home"


def test_full_disk_still_gives_verified_mnist(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = child_env(HOME=tmp_path / "home", KERAS_HOME=tmp_path / "keras", AE_CACHE_DIR=cache)
    mounts = f'mount -t tmpfs -o size=1m tmpfs "{cache}"'  # the converted cache needs about 11 MB
    done = run_in_private_namespace(mounts, LOAD_MNIST, str(cache / "probe"), str(cache), env=env)
    assert done.returncode == 0, done.stderr
    assert f"content: {data.MNIST_CONTENT_SHA256}" in done.stdout
    warning = one_line(done.stderr)
    assert "could not be written (No space left on device" in warning
    assert "AE_CACHE_DIR" in warning
    assert "cache folder: ['probe']" in done.stdout, "the half-written cache and its .part file are removed"


def test_cache_dir_that_is_a_file(fast_mirror, monkeypatch, capsys):
    not_a_folder = fast_mirror / "notes.txt"
    not_a_folder.write_text("my notes\n")
    monkeypatch.setenv(config.CACHE_ENV, str(not_a_folder))
    dataset = data.load_mnist()
    assert data.content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    warning = one_line(capsys.readouterr().err)
    assert f"{not_a_folder} is a file, not a folder" in warning and "set AE_CACHE_DIR" in warning
    assert not_a_folder.read_text() == "my notes\n"


def test_folder_in_place_of_the_cache_file(fast_mirror, capsys):
    cache = data.project_cache_file()
    cache.mkdir(parents=True)
    dataset = data.load_mnist()
    assert data.content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    warning = one_line(capsys.readouterr().err)
    assert f"{cache} is a folder" in warning and "AE_CACHE_DIR" in warning
    assert cache.is_dir() and not list(cache.parent.glob(".*part"))


# --------------------------------------------------------------------------- Fashion-MNIST (notebook 09)


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
    assert len(data.FASHION_CLASS_NAMES) == 10 and data.FASHION_CLASS_NAMES[9] == "Ankle boot"


def test_tampered_fashion_file_is_refused(isolated_sources, fashion_copy, monkeypatch):
    target = fashion_copy / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(target.read_bytes()))
    content[100] = (content[100] + 1) % 10
    target.write_bytes(gzip.compress(bytes(content)))
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", fashion_copy)
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_fashion_mnist()
    assert "does not match the Fashion-MNIST checksum" in str(info.value)


def test_fashion_folder_override_is_used(isolated_sources, fashion_copy, monkeypatch):
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", isolated_sources / "nowhere")
    monkeypatch.setenv(data.FASHION_DIR_ENV, str(fashion_copy))
    (_, y_train), _ = data.load_fashion_mnist()
    assert len(y_train) == 60000


def test_fashion_missing_everywhere_says_how_to_fix(isolated_sources, monkeypatch):
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", isolated_sources / "nowhere")
    monkeypatch.delenv(data.FASHION_DIR_ENV, raising=False)
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "Debian's dataset-fashion-mnist" in message and "Keras (cache or download)" in message


def test_fashion_from_keras_is_checked_too(isolated_sources, monkeypatch):
    real = data.load_fashion_mnist()
    assert data.content_sha256(real) == data.FASHION_CONTENT_SHA256
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", isolated_sources / "nowhere")
    monkeypatch.delenv(data.FASHION_DIR_ENV, raising=False)
    refusal = "does not match the Fashion-MNIST checksum"
    assert_keras_copy_is_checked(monkeypatch, data.load_fashion_mnist, real, data.FASHION_CONTENT_SHA256, refusal)
