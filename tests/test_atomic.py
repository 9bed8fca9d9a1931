"""atomic_write and check_writable_dir: the old file or the new one, never a torn one."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiofit._atomic import atomic_write, check_writable_dir


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def old(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(b"old contents")
    return path


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def test_writes_a_new_file_with_the_usual_permissions(tmp_path: Path, umask_027: None) -> None:
    path = tmp_path / "new.bin"
    with atomic_write(path) as f:
        f.write(b"\x00\x01hello")
    assert path.read_bytes() == b"\x00\x01hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600
    assert leftovers(tmp_path) == []


def test_replaces_an_existing_file_keeping_its_permissions(old: Path) -> None:
    old.chmod(0o604)
    with atomic_write(str(old), "wb") as f:
        f.write(b"new")
    assert old.read_bytes() == b"new"
    assert stat.S_IMODE(old.stat().st_mode) == 0o604
    assert leftovers(old.parent) == []


def test_text_mode_passes_encoding_and_newline(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write("a,é\r\n1,2\r\n")
    assert path.read_bytes() == "a,é\r\n1,2\r\n".encode()


def test_the_temp_file_is_in_the_same_folder_and_hidden(old: Path) -> None:
    with atomic_write(old) as f:
        f.write(b"new")
        [temp] = leftovers(old.parent)
        assert temp.startswith(".data.bin.")
        assert old.read_bytes() == b"old contents"  # nothing replaced before the end
    assert leftovers(old.parent) == []
    assert old.read_bytes() == b"new"


def write_then_fail(path: Path) -> None:
    with atomic_write(path) as f:
        f.write(b"half of the new")
        raise RuntimeError("boom")


def test_an_error_inside_the_block_leaves_the_old_file_and_no_temp(old: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(old)
    assert old.read_bytes() == b"old contents"
    assert leftovers(old.parent) == []


def test_a_crash_between_write_and_replace_leaves_the_old_file(
    old: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "simulated crash", src, None, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"), atomic_write(old) as f:
        f.write(b"new contents that never land")
    assert old.read_bytes() == b"old contents"
    assert leftovers(old.parent) == []


def test_a_full_disk_surfaces_as_the_original_error_naming_the_path(
    old: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left") as info, atomic_write(old) as f:
        f.write(b"new")
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(old)
    assert old.read_bytes() == b"old contents"
    assert leftovers(old.parent) == []


def test_fsyncs_the_file_before_the_replace_and_the_folder_after(
    old: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_write(old) as f:
        f.write(b"new")
    expected = ["fsync file", "replace", "fsync dir"] if os.name == "posix" else [
        "fsync file", "replace"]  # fmt: skip
    assert events == expected


def test_a_killed_process_leaves_the_old_file_intact(old: Path) -> None:
    # A real crash: the process dies mid-write, with no chance to clean up.
    script = (
        "import os, sys\n"
        "from aiofit._atomic import atomic_write\n"
        "with atomic_write(sys.argv[1]) as f:\n"
        "    f.write(b'x' * 1_000_000)\n"
        "    f.flush()\n"
        "    os._exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(old)], check=False)
    assert result.returncode == 3
    assert old.read_bytes() == b"old contents"
    # The stale temp file is hidden and never mistaken for the real one.
    assert [name.startswith(".data.bin.") for name in leftovers(old.parent)] == [True]


def test_a_missing_folder_raises_the_original_error_with_the_path(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "file.bin"
    with pytest.raises(FileNotFoundError) as info, atomic_write(target) as f:
        f.write(b"never")
    assert info.value.filename == str(target)


def test_an_unsupported_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Received: mode='a'"), atomic_write(
        tmp_path / "x", "a"
    ):
        pass


def test_check_writable_dir_accepts_a_writable_folder_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    check_writable_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_check_writable_dir_refuses_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=r"does not exist.*Received: path='.*nope'"):
        check_writable_dir(missing)


def test_check_writable_dir_refuses_a_file(old: Path) -> None:
    with pytest.raises(NotADirectoryError, match=r"Received: path='.*data.bin'"):
        check_writable_dir(old)


def test_check_writable_dir_refuses_a_read_only_folder(read_only_dir: Path) -> None:
    with pytest.raises(OSError, match=r"Cannot create files in this folder") as info:
        check_writable_dir(read_only_dir)
    assert info.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    assert f"Received: path='{read_only_dir}'" in str(info.value)


def test_an_error_with_only_a_message_keeps_its_message(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    def write_then_fail() -> None:
        with atomic_write(target) as f:
            f.write(b"new")
            raise OSError("disk full")

    with pytest.raises(OSError, match="^disk full$"):
        write_then_fail()
    assert target.read_bytes() == b"old"
