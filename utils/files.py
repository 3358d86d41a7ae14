"""Files that are never half-written: atomic writes, checksums, and the leftovers of interrupted writes."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from utils import config

FIX = f"Free some space, or set {config.OUTPUT_ENV} to a writable folder, and run again to keep it."


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def part_file_prefix(path: Path) -> str:
    """How temporary files of a write to ``path`` begin: ``.NAME.PID.``, so later runs know whose they are."""
    return f".{Path(path).name}.{os.getpid()}."


def temporary_beside(path: Path, suffix: str = ".part") -> Path:
    """A new, empty temporary file in ``path``'s folder, named after ``path`` and this process."""
    handle, name = tempfile.mkstemp(dir=Path(path).parent, prefix=part_file_prefix(path), suffix=suffix)
    os.close(handle)
    return Path(name)


def publish(temporary: Path, path: Path) -> None:
    """Flush ``temporary`` to disk, make it readable like any other file, and rename it over ``path``."""
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o644)  # mkstemp made it private
    os.replace(temporary, path)


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, so no file can be written there; remove or rename it")
    temporary = temporary_beside(path)
    try:
        with open(temporary, "wb") as handle:
            write(handle)
        publish(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.\w+\.part(\.[\w.]+)?")
    removed = []
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            match = pattern.fullmatch(candidate.name)
            if match and candidate.is_file() and not _process_is_running(int(match.group(1))):
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
    return removed


def describe_os_error(error: OSError) -> str:
    """``Read-only file system: /home/me/.cache`` rather than ``[Errno 30] Read-only file system: '...'``."""
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return error.strerror or str(error)


@contextlib.contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold a lock on the folder of ``path``: exclusive to write, shared to read (no lock file is left).

    Two kernels saving the same model then write it one after the other, and a reader never sees one save's
    model with another's record. A folder that does not exist has nothing to guard.
    """
    try:
        handle = os.open(Path(path).parent, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


@contextlib.contextmanager
def quiet_failed_file_cleanup() -> Iterator[None]:
    """Silence h5py's second report of a failed write, raised while its file object is freed.

    After a full disk, h5py's ``ObjectID.__dealloc__`` prints a traceback through ``sys.excepthook`` (which
    Jupyter shows as an error) and ``sys.unraisablehook``; the caller's one line says it already.
    """
    hooks = sys.excepthook, sys.unraisablehook

    def from_h5py(*details) -> bool:
        return "h5py" in " ".join(map(repr, details)) or "Can't decrement id ref count" in str(details)

    sys.excepthook = lambda kind, value, trace: None if from_h5py(value) else hooks[0](kind, value, trace)
    sys.unraisablehook = lambda raised: None if from_h5py(raised.object, raised.exc_value) else hooks[1](raised)
    try:
        yield
    finally:
        gc.collect()
        sys.excepthook, sys.unraisablehook = hooks


def describe_write_error(error: OSError, path: Path) -> str:
    """What failed in writing ``path``, in words, with the free space when the disk is full."""
    reason = error.strerror or (str(error).splitlines()[0] if str(error) else type(error).__name__)
    if error.errno == errno.ENOSPC or "No space left" in str(error) or "errno = 28" in str(error):
        reason = "No space left on device"
        folder = next((parent for parent in Path(path).parents if parent.exists()), Path("/"))
        reason += f", {shutil.disk_usage(folder).free / 1e6:.1f} MB free there"
    return f"could not write {path} ({reason})"


def save_output(path: Path, write: Callable[[BinaryIO], None], what: str) -> Path | None:
    """Write an output that only records the run (a figure, metrics) atomically, and return its path.

    Nothing is written when the outputs folder cannot be (the notebook's first cell said so once), and a
    failed write is one line; either way the notebook goes on, and None is returned.
    """
    if config.outputs_problem() is not None:
        return None
    try:
        write_atomically(path, write)
    except OSError as error:
        print(f"{what} was not saved: {describe_write_error(error, path)}. {FIX}", file=sys.stderr)
        return None
    return path
