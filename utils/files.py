"""Files that are never half-written: atomic writes, checksums, and the leftovers of interrupted writes."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.\w+\.part(\.\w+)?")
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
