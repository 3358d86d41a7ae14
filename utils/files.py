"""Files that are never half-written: atomic writes, checksums, the folder lock, and one-line write failures."""

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


@contextlib.contextmanager
def replacing(path: Path, suffix: str = ".part") -> Iterator[Path]:
    """A new temporary file beside ``path`` for the block to write; renamed over ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, so no file can be written there; remove or rename it")
    remove_stale_parts(path)
    # Named .NAME.PID.*.part, so that later runs know whose it is.
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, 0o644)  # mkstemp made it private
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``."""
    with replacing(path) as temporary, open(temporary, "wb") as handle:
        write(handle)


def _process_is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it does, under another user
        pass
    return True


def remove_stale_parts(path: Path) -> list[Path]:
    """Delete the temporary files that interrupted writes of ``path`` left behind (their process is gone)."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.\w+\.part(\.[\w.]+)?")
    removed = []
    for candidate in path.parent.iterdir() if path.parent.is_dir() else ():
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
    """Hold a lock on the folder of ``path``, exclusive to write and shared to read, so that kernels take turns."""
    try:
        handle = os.open(Path(path).parent, os.O_RDONLY)
    except OSError:  # a folder that does not exist has nothing to guard
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _from_h5py(*details) -> bool:
    return "h5py" in repr(details) or "Can't decrement id ref count" in repr(details)


def write_or_report(path: Path, write: Callable[[], object], failed: str, then: str = "") -> bool:
    """Run ``write``, which writes ``path``; False after one line ``FAILED: could not write PATH (why). THEN`` if not.

    Nothing is tried when the outputs folder cannot be written: the notebook's first cell has said so once.
    """
    if config.outputs_problem() is not None:
        return False
    # After a full disk, h5py reports the failed write again when its file object is freed, through
    # sys.excepthook (which Jupyter shows as an error) and sys.unraisablehook: silence that second report.
    hooks = sys.excepthook, sys.unraisablehook
    sys.excepthook = lambda kind, value, trace: None if _from_h5py(value) else hooks[0](kind, value, trace)
    sys.unraisablehook = lambda raised: None if _from_h5py(raised.object, raised.exc_value) else hooks[1](raised)
    reason = None
    try:
        write()
    except OSError as error:  # keep only words: the traceback's frames hold the half-written file open
        text = str(error)
        full = error.errno == errno.ENOSPC or "No space left" in text or "errno = 28" in text
        reason = error.strerror or text.partition("\n")[0] or type(error).__name__
    finally:
        if reason is not None:
            gc.collect()  # frees the failed file's h5py objects now, while their report is silenced
        sys.excepthook, sys.unraisablehook = hooks
    if reason is None:
        return True
    if full:  # measured once the half-written file is gone, so the free space is right
        folder = next((parent for parent in Path(path).parents if parent.exists()), Path("/"))
        reason = f"No space left on device, {shutil.disk_usage(folder).free / 1e6:.1f} MB free there"
    print(f"{failed}: could not write {path} ({reason}). {then}{FIX}", file=sys.stderr)
    return False


def save_output(path: Path, write: Callable[[BinaryIO], None], what: str) -> Path | None:
    """Write an output that only records the run (a figure, metrics) atomically: its path, or None (write_or_report)."""
    return path if write_or_report(path, lambda: write_atomically(path, write), f"{what} was not saved") else None
