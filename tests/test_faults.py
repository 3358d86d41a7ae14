"""Faults of real learners' machines (issue 10), each recreated, with what the project now does about it.

A read-only home and a full disk are made real in a private mount namespace (`unshare`), because root,
which runs CI, ignores chmod. Those child processes also get a network namespace of their own: no network.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from utils import codec, config, data, models, plotting, training

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers


def run_in_private_namespace(
    mount_commands: str, code: str, *args: str, env: dict
) -> subprocess.CompletedProcess:
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


def child_env(**values: str | Path) -> dict:
    """The environment of a child process that imports this worktree's utils, with no AE_* overrides."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AE_")}
    env.pop("KERAS_HOME", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update({key: str(value) for key, value in values.items()})
    return env


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
print("content:", data.mnist_content_sha256(dataset))
print("cache folder:", sorted(os.listdir(cache)) if os.path.isdir(cache) else "absent")
"""


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]


@pytest.fixture(scope="module")
def built_cache(mnist, tmp_path_factory):
    """A project cache built once from the real MNIST (the .npz and its .sha256), to copy into each test."""
    folder = tmp_path_factory.mktemp("built-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(config.CACHE_ENV, str(folder))
        data.save_project_cache(mnist)
    return folder


@pytest.fixture
def good_cache(isolated_sources, built_cache):
    """The isolated project cache, filled with a good copy; returns the cache file."""
    shutil.copytree(built_cache, data.project_cache_file().parent)
    return data.project_cache_file()


# --------------------------------------------------------------------------- 1. the cache cannot be written


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


def test_cache_dir_that_is_a_file(isolated_sources, monkeypatch, capsys):
    not_a_folder = isolated_sources / "notes.txt"
    not_a_folder.write_text("my notes\n")
    monkeypatch.setenv(config.CACHE_ENV, str(not_a_folder))
    dataset = data.load_mnist()
    assert data.mnist_content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    warning = one_line(capsys.readouterr().err)
    assert f"{not_a_folder} is a file, not a folder" in warning and "set AE_CACHE_DIR" in warning
    assert not_a_folder.read_text() == "my notes\n"


def test_folder_in_place_of_the_cache_file(isolated_sources, capsys):
    cache = data.project_cache_file()
    cache.mkdir(parents=True)
    dataset = data.load_mnist()
    assert data.mnist_content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    warning = one_line(capsys.readouterr().err)
    assert f"{cache} is a folder" in warning and "AE_CACHE_DIR" in warning
    assert cache.is_dir() and not list(cache.parent.glob(".*part"))


def test_folder_in_place_of_the_checksum_file_on_first_build(isolated_sources, capsys):
    cache = data.project_cache_file()
    data.checksum_file(cache).mkdir(parents=True)
    dataset = data.load_mnist()
    assert data.mnist_content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    warning = one_line(capsys.readouterr().err)
    assert f"{data.checksum_file(cache)} is a folder" in warning and "could not be written" in warning
    assert not list(cache.parent.glob(".*part"))


def test_folder_in_place_of_the_checksum_file_keeps_the_good_cache(good_cache, capsys):
    cache = good_cache
    good = data.sha256_file(cache)
    sidecar = data.checksum_file(cache)
    sidecar.unlink()
    sidecar.mkdir()
    dataset = data.load_mnist()
    assert data.mnist_content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    warning = one_line(capsys.readouterr().err)
    assert f"{sidecar} is a folder, not a file" in warning and "passed the full content check" in warning
    assert cache.is_file() and data.sha256_file(cache) == good, "the good cache must not be deleted"


# --------------------------------------------------------------------------- 2. a damaged .sha256 sidecar


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("empty", "is empty"),
        ("garbage", "does not hold a sha256"),
        ("missing", "is missing"),
        ("other file's", "does not match the cache file"),
    ],
)
def test_damaged_checksum_file_is_reported_in_one_line(good_cache, capsys, damage, expected):
    cache = good_cache
    sidecar = data.checksum_file(cache)
    damages = {
        "empty": lambda: sidecar.write_text(""),
        "garbage": lambda: sidecar.write_bytes(b"\x00\xffnot a checksum at all\n"),
        "missing": sidecar.unlink,
        "other file's": lambda: sidecar.write_text(f"{'0' * 64}  {cache.name}\n"),
    }
    damages[damage]()
    dataset = data.load_mnist()
    assert data.mnist_content_sha256(dataset) == data.MNIST_CONTENT_SHA256
    warning = one_line(capsys.readouterr().err)
    assert f"checksum file {sidecar} {expected}" in warning
    if damage != "other file's":
        assert "does not match" not in warning
    assert "it was written again" in warning
    assert sidecar.read_text().split()[0] == data.sha256_file(cache)
    data.load_mnist()
    assert capsys.readouterr().err == "", "once repaired, loading is quiet"


# --------------------------------------------------------------------------- 3. a path that is a folder


def test_load_mnist_from_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_mnist(tmp_path)
    assert f"{tmp_path} is a folder, not a file" in str(info.value)
    assert "does not exist" not in str(info.value)


# --------------------------------------------------------------------------- 4-6. a model and its record


def build_small() -> keras.Sequential:
    return models.build_dense_autoencoder(latent_dim=8, hidden_units=(32,))[2]


def build_other() -> keras.Sequential:
    return models.build_dense_autoencoder(latent_dim=8, hidden_units=(48,))[2]


@pytest.fixture(scope="module")
def digits(mnist):
    """400 real training digits and 100 validation digits, flat and in [0, 1]."""
    (x_train, _), _ = mnist
    images = data.flatten_images(data.scale_images(x_train[:500]))
    return images[:400], images[400:]


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    monkeypatch.setenv(config.OUTPUT_ENV, str(tmp_path))
    monkeypatch.delenv(config.QUICK_ENV, raising=False)
    return tmp_path


def train_small(digits, build=build_small, name="small", **changes):
    train, val = digits
    settings = training.default_settings(quick=True, epochs=1, batch_size=64, jit_compile=False, **changes)
    return training.load_or_train(name, build, train, train, (val, val), settings, verbose=False)


def part_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if ".part" in path.name)


CRASHING_SAVE = """
import os, signal, sys
import keras
from utils import models, training

calls = []
real_replace = os.replace


def replace_or_die(source, destination):
    calls.append(destination)
    if len(calls) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)  # the power goes out: no cleanup runs
    real_replace(source, destination)


os.replace = replace_or_die
keras.utils.set_random_seed(7)
model = models.build_dense_autoencoder(latent_dim=8, hidden_units=(32,))[2]
record = training.TrainingRecord({"loss": [0.5]}, 1.0, {}, 10)
training.save_model(model, training.model_path("small"), record)
"""


def kill_during_save(outputs: Path, at_rename: int) -> None:
    """Save another model as "small" in a child process that is killed just before rename ``at_rename``."""
    env = child_env(AE_OUTPUT_DIR=outputs)
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_SAVE, str(at_rename)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def test_crash_between_the_two_renames_is_caught_and_retrained(outputs, digits, capsys):
    _, first = train_small(digits)
    path = training.model_path("small")
    kill_during_save(outputs, at_rename=2)  # the new .keras is in place, its record is not
    assert data.sha256_file(path) != first.model_file_sha256
    assert [name.split(".")[1:3] for name in part_files(path.parent)] == [["small", "json"]]
    capsys.readouterr()
    model, record = train_small(digits)
    message = one_line(capsys.readouterr().err)
    assert f"{path} does not match the sha256 in its record small.json" in message
    assert message.endswith("training it again.")
    assert part_files(path.parent) == [], "the leftover .part file is removed"
    assert record.model_file_sha256 == data.sha256_file(path)
    loaded, _ = train_small(digits)
    assert "Loaded the model saved in" in capsys.readouterr().out
    assert training.weights_sha256(loaded) == training.weights_sha256(model)


def test_save_killed_halfway_leaves_nothing_behind(outputs, digits, capsys):
    model, _ = train_small(digits)
    path = training.model_path("small")
    kill_during_save(outputs, at_rename=1)  # killed before any rename: only the .keras part is written
    assert [name.split(".")[1:3] for name in part_files(path.parent)] == [["small", "keras"]]
    capsys.readouterr()
    loaded, _ = train_small(digits)
    assert "Loaded the model saved in" in capsys.readouterr().out, "the old pair is intact and still used"
    assert training.weights_sha256(loaded) == training.weights_sha256(model)
    assert part_files(path.parent) == []


def test_another_architecture_under_the_same_name_is_not_used(outputs, digits, capsys):
    train_small(digits, build_small)
    capsys.readouterr()
    model, record = train_small(digits, build_other)
    message = one_line(capsys.readouterr().err)
    assert "small.keras holds a different architecture" in message and message.endswith("training it again.")
    assert model.layers[0].layers[0].units == 48
    assert record.architecture_sha256 == models.architecture_fingerprint(build_other())
    train_small(digits, build_other)
    assert "Loaded the model saved in" in capsys.readouterr().out


def test_another_model_saved_by_hand_under_the_same_name_is_not_used(outputs, digits, capsys):
    train_small(digits)
    path = training.model_path("small")
    keras.utils.set_random_seed(3)
    build_small().save(path)  # same architecture, other (untrained) weights, record left as it was
    capsys.readouterr()
    train_small(digits)
    message = one_line(capsys.readouterr().err)
    assert f"{path} does not match the sha256 in its record small.json" in message


def test_truncated_record_is_named_as_the_damaged_file(outputs, digits, capsys):
    train_small(digits)
    record_file = training.record_path(training.model_path("small"))
    text = record_file.read_text()
    record_file.write_text(text[: len(text) // 2])
    capsys.readouterr()
    _, record = train_small(digits)
    message = one_line(capsys.readouterr().err)
    assert message.startswith(f"the training record {record_file} is damaged (")
    assert message.endswith("training it again.")
    assert json.loads(record_file.read_text())["model_file_sha256"] == record.model_file_sha256


def test_truncated_model_file_is_named_without_keras_file_not_found(outputs, digits, capsys):
    train_small(digits)
    path = training.model_path("small")
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    capsys.readouterr()
    model, _ = train_small(digits)
    message = one_line(capsys.readouterr().err)
    assert message.startswith(f"{path} does not match the sha256") and "truncated or damaged" in message
    assert "File not found" not in message
    assert keras.models.load_model(path) is not None


def test_record_without_checksums_is_not_trusted(outputs, digits, capsys):
    train_small(digits)
    record_file = training.record_path(training.model_path("small"))
    old_style = {k: v for k, v in json.loads(record_file.read_text()).items() if not k.endswith("sha256")}
    record_file.write_text(json.dumps(old_style))
    capsys.readouterr()
    train_small(digits)
    assert "has no checksums (an older version wrote it)" in one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- 7. training on the wrong scale


def test_training_refuses_images_on_the_wrong_scale(outputs, digits):
    train, val = digits
    poisoned = train.copy()
    poisoned[5, 300] = np.nan
    settings = training.default_settings(quick=True, epochs=1)
    cases = [
        ((train * 255, train * 255, (val, val)), r"inputs must have pixels in \[0, 1\].*divide by 255"),
        ((poisoned, train, (val, val)), "inputs contains NaN or infinity"),
        ((train, train - 0.5, (val, val)), r"targets must have pixels in \[0, 1\]"),
        ((train, train, (val, val * 255)), r"validation targets must have pixels in \[0, 1\]"),
        (
            (train.reshape(-1, 28, 28), train, (val, val)),
            r"inputs must have shape \(n, 784\).*flatten_images",
        ),
    ]
    for (inputs, targets, validation), expected in cases:
        with pytest.raises(ValueError, match=expected):
            training.load_or_train("scale", build_small, inputs, targets, validation, settings, verbose=False)
    assert not list((outputs / "models").glob("scale*")), "nothing is saved for refused data"


def test_training_stops_on_a_non_finite_loss_and_saves_nothing(outputs, digits):
    with pytest.raises(training.TrainingDivergedError, match="loss became NaN or infinite.*learning_rate"):
        train_small(digits, name="diverging", learning_rate=1e30)
    assert not list((outputs / "models").glob("diverging*")), "a non-finite model is never saved"


def test_save_model_refuses_non_finite_weights(tmp_path):
    model = build_small()
    weights = model.get_weights()
    weights[0][0, 0] = np.inf
    model.set_weights(weights)
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        training.save_model(model, tmp_path / "broken.keras", training.TrainingRecord({}, 0.0, {}, 0))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 8. errors that name the argument


@pytest.fixture(scope="module")
def quantizer(mnist):
    (x_train, _), _ = mnist
    codes = data.flatten_images(data.scale_images(x_train[:200]))[:, ::49]  # 16 real pixel values per digit
    return codec.LatentQuantizer.fit(codes, 4), codes


def test_helpers_refuse_bad_arguments_by_name(mnist, quantizer, tmp_path):
    (x_train, y_train), _ = mnist
    images = data.scale_images(x_train[:100])
    fitted, codes = quantizer
    nan_codes = codes.copy()
    nan_codes[3, 2] = np.nan
    backwards = tmp_path / "backwards.json"
    backwards.write_text(json.dumps({"bits": 4, "low": [1.0, 0.0], "high": [0.0, 1.0]}))
    history = {"loss": [], "val_loss": []}
    nan_points = np.zeros((100, 2))
    nan_points[7] = np.nan
    cases = [
        (lambda: data.stratified_subset(x_train, y_train, 100.5), TypeError, "size must be an integer"),
        (lambda: data.stratified_subset(x_train, y_train, 5), ValueError, r"size must be from 10 .* got 5"),
        (lambda: data.balanced_subset(x_train, y_train, 0), ValueError, "per_class must be from 1"),
        (lambda: data.add_gaussian_noise(images, sigma=np.inf), ValueError, "sigma must be a finite number"),
        (lambda: plotting.show_digit_grid(images[:0]), ValueError, "images is empty"),
        (lambda: plotting.plot_learning_curves({}), ValueError, "history has no values"),
        (lambda: plotting.plot_learning_curves(history), ValueError, "history has no values"),
        (lambda: plotting.plot_latent_2d(nan_points, y_train[:100]), ValueError, "points contains 2 NaN"),
        (
            lambda: plotting.show_latent_grid(images[:4], np.array([0.0, np.nan]), np.array([0.0, 1.0])),
            ValueError,
            "grid_x contains 1 NaN",
        ),
        (
            lambda: models.build_dense_autoencoder(hidden_units=(0,)),
            ValueError,
            "hidden_units must hold positive",
        ),
        (lambda: models.build_conv_autoencoder(filters=(32,)), ValueError, "filters must hold 2"),
        (lambda: codec.pillow_round_trip(x_train[:2], "XYZ"), ValueError, "format must be one Pillow can"),
        (lambda: codec.pillow_round_trip(x_train[:2], "JPEG", quality=500), ValueError, "quality for JPEG"),
        (lambda: codec.LatentQuantizer.fit(nan_codes, 4), ValueError, "training_codes contain NaN"),
        (
            lambda: codec.LatentQuantizer.fit(codes, 4, coverage=1.5),
            ValueError,
            r"coverage must be .*\(0, 1\]",
        ),
        (lambda: codec.LatentQuantizer.fit(codes, 4, coverage=0), ValueError, r"coverage must be .*\(0, 1\]"),
        (lambda: codec.LatentQuantizer.load(backwards), codec.CodecError, "high must be above low"),
        (lambda: fitted.encode(codes[:0]), ValueError, "codes is empty"),
    ]
    for call, error, expected in cases:
        with pytest.raises(error, match=expected):
            call()


def test_training_refuses_targets_none_and_a_3d_input(digits):
    train, val = digits
    settings = training.default_settings(quick=True, epochs=1)
    with pytest.raises(TypeError, match="targets is None"):
        training.train_autoencoder(build_small(), train, None, (val, val), settings)
    with pytest.raises(ValueError, match=r"inputs must have shape \(n, 784\)"):
        training.train_autoencoder(build_small(), train.reshape(-1, 28, 28), train, (val, val), settings)
    with pytest.raises(ValueError, match="sigma must be a finite number"):
        training.NoisyImages(train, sigma=np.inf, batch_size=64)


# --------------------------------------------------------------------------- 9. setup waits for apt's lock


def run_fashion_setup(
    tmp_path: Path, lock_timeout: int, release_after: float | None
) -> subprocess.CompletedProcess:
    """``make fashion-data`` against a private copy of dpkg's state, whose lock another "apt" holds."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("this test runs `make setup`'s apt step: it needs root and apt-get, as CI has")
    if not data.FASHION_DEBIAN_DIR.is_dir():
        pytest.fail(
            "dataset-fashion-mnist must be installed (make setup) so that apt has nothing to download"
        )
    admin = tmp_path / "dpkg"
    admin.mkdir()
    shutil.copyfile("/var/lib/dpkg/status", admin / "status")
    lock = os.open(admin / "lock-frontend", os.O_RDWR | os.O_CREAT)
    fcntl.lockf(lock, fcntl.LOCK_EX)  # what unattended-upgrades does at boot
    releaser = None
    if release_after is not None:
        releaser = threading.Timer(release_after, fcntl.lockf, (lock, fcntl.LOCK_UN))
        releaser.start()
    try:
        return subprocess.run(
            [
                "make",
                "-s",
                "--no-print-directory",
                "fashion-data",
                f"FASHION_FILE={tmp_path / 'not-installed.gz'}",
                f"APT_GET=apt-get -o Dir::State::status={admin / 'status'}",
                f"APT_LOCK_TIMEOUT={lock_timeout}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        if releaser is not None:
            releaser.cancel()
        os.close(lock)


def test_setup_waits_for_the_apt_lock(tmp_path):
    done = run_fashion_setup(tmp_path, lock_timeout=120, release_after=2.0)
    assert done.returncode == 0, done.stderr
    assert "==> installing Debian's dataset-fashion-mnist" in done.stdout
    assert "note:" not in done.stdout, done.stdout
    assert (tmp_path / "dpkg" / "lock").exists(), (
        "apt ran against the private state and got its lock in the end"
    )


def test_setup_reports_an_apt_lock_that_stays_held(tmp_path):
    done = run_fashion_setup(tmp_path, lock_timeout=1, release_after=None)
    assert done.returncode == 0, done.stderr
    assert "note: apt was still busy after 1 s, so dataset-fashion-mnist was not installed" in done.stdout
    assert f"{tmp_path / 'dpkg' / 'lock-frontend'}" in done.stdout, "apt's own reason is shown"
    assert "run 'make setup' again" in done.stdout


# --------------------------------------------------------------------------- 10. a quiet main job


def test_run_series_kernels_use_ipc_and_print_no_tcp_warning(tmp_path, capfd):
    spec = importlib.util.spec_from_file_location("run_series", ROOT / "scripts" / "run_series.py")
    run_series = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_series)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)"
        )
    ]
    source = tmp_path / "00_transport.ipynb"
    nbformat.write(notebook, source)
    run_series.execute(source, tmp_path / "executed.ipynb", timeout=120)
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "ipc"
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out
    assert "[IPKernelApp] WARNING" not in captured.err + captured.out
