"""Atomic writes, checksums, and the clean-up of what interrupted writes leave behind."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys

import pytest

from tests.unit.support import child_env, one_line
from utils import files


def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "blob.bin"
    content = os.urandom(3 << 20)  # more than one read chunk
    path.write_bytes(content)
    assert files.sha256_file(path) == hashlib.sha256(content).hexdigest()


def test_write_atomically_writes_the_file_and_leaves_no_part(tmp_path):
    path = tmp_path / "new" / "folder" / "notes.txt"
    files.write_atomically(path, lambda handle: handle.write(b"first\n"))
    assert path.read_bytes() == b"first\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644), "readable like any other file"
    files.write_atomically(path, lambda handle: handle.write(b"second\n"))
    assert path.read_bytes() == b"second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_part(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"old\n")

    def fail_halfway(handle):
        handle.write(b"half of the new")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        files.write_atomically(path, fail_halfway)
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_write_atomically_refuses_a_folder_in_place_of_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.mkdir()
    with pytest.raises(IsADirectoryError, match=f"{path} is a folder, so no file can be written there"):
        files.write_atomically(path, lambda handle: handle.write(b"x"))
    assert path.is_dir() and list(tmp_path.iterdir()) == [path]


def test_part_files_are_named_after_the_target_and_the_process(tmp_path):
    path = tmp_path / "model.keras"
    with files.replacing(path, suffix=".part.keras") as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(f".model.keras.{os.getpid()}.")
        assert temporary.name.endswith(".part.keras") and temporary.stat().st_size == 0
        temporary.write_bytes(b"whole")
    assert path.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [path]


def test_remove_stale_parts_removes_only_those_of_finished_processes(tmp_path):
    path = tmp_path / "model.keras"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)  # a process that has ended, so its parts are leftovers
    stale = [tmp_path / f".model.keras.{dead_pid}.abc123.part", tmp_path / f".model.keras.{dead_pid}.x.part.keras"]
    other_target = tmp_path / f".other.keras.{dead_pid}.abc123.part"
    with files.replacing(path) as mine:  # this process is alive: its part may still be in use
        for leftover in stale:
            leftover.write_bytes(b"half")
        other_target.write_bytes(b"not ours")
        assert sorted(files.remove_stale_parts(path)) == sorted(stale)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other_target.name])
    assert files.remove_stale_parts(tmp_path / "missing-folder" / "x.npz") == []
    stale[0].write_bytes(b"half")
    files.write_atomically(path, lambda handle: handle.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.keras", other_target.name]), "a write cleans up"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/home/me/.cache"), "Read-only file system: /home/me/.cache"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (NotADirectoryError("/tmp/notes.txt is a file, not a folder"), "/tmp/notes.txt is a file, not a folder"),
    ],
)
def test_describe_os_error_gives_the_reason_and_the_file(error, expected):
    assert files.describe_os_error(error) == expected


def test_save_output_writes_whole_files(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    path = files.save_output(tmp_path / "metrics.json", lambda handle: handle.write(b"{}"), "The metrics")
    assert path == tmp_path / "metrics.json" and path.read_bytes() == b"{}"


def test_save_output_skips_an_unwritable_outputs_folder_silently(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path / "a-file" / "outputs"))
    target = tmp_path / "a-file" / "outputs" / "x.json"
    assert files.save_output(target, lambda handle: handle.write(b"{}"), "The metrics") is None
    assert capsys.readouterr() == ("", ""), "the notebook's first cell has said it once already"


def test_a_full_disk_while_saving_an_output_is_one_line_and_leaves_no_part(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))

    def fill_the_disk(handle):
        handle.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    assert files.save_output(tmp_path / "fig.png", fill_the_disk, "The figure") is None
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"The figure was not saved: could not write {tmp_path / 'fig.png'} (No space left")
    assert "MB free there" in line and "AE_OUTPUT_DIR" in line
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_locked_makes_a_second_writer_wait_and_leaves_no_file(tmp_path):
    target = tmp_path / "model.keras"
    waiter = [sys.executable, "-c", LOCK_AND_SAY, str(target)]
    with files.locked(target):
        child = subprocess.Popen(waiter, stdout=subprocess.PIPE, text=True, env=child_env())
        with pytest.raises(subprocess.TimeoutExpired):
            child.communicate(timeout=2)
    assert child.communicate(timeout=30)[0].strip() == "locked"
    assert list(tmp_path.iterdir()) == []


LOCK_AND_SAY = """
import sys
from pathlib import Path
from tests.unit.support import child_env, one_line
from utils import files
with files.locked(Path(sys.argv[1])):
    print("locked")
"""
