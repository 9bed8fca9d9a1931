"""Crash-safe file writes: a temp file in the target's folder, fsync, then ``os.replace``.

Every file a callback writes (checkpoints, backups, CSV logs, plots) goes
through :func:`atomic_write`, so a crash at any instant leaves either the old
file or the new one at the path, never a torn one. :func:`check_writable_dir`
lets a callback fail in ``on_train_begin`` rather than after an hour of training.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["atomic_write", "check_writable_dir"]

_MODES = ("w", "wb")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temp file next to ``path``; on a clean exit, make it ``path`` atomically.

    The temp file (``.<name>.<random>.tmp`` in the same folder, so the final
    rename never crosses a filesystem) is flushed and fsynced, given the old
    file's permissions (or the usual ``0o666 & ~umask`` for a new file), then
    moved over ``path`` with ``os.replace``; the folder is fsynced too on POSIX
    so the rename itself survives a power cut. If the ``with`` block raises, or
    any step fails, the temp file is removed and the old file is untouched.

    Args:
        path: The file to (re)write.
        mode: ``"wb"`` (bytes) or ``"w"`` (text).
        encoding: Text mode only: the encoding (default: the locale's).
        newline: Text mode only: as for :func:`open` (``""`` for the ``csv`` module).

    Yields:
        The open temp file to write to.

    Raises:
        ValueError: for a mode other than ``"w"`` or ``"wb"``.
        OSError: the original error of whichever step failed (a missing
            folder, a full disk...), with ``filename`` set to ``path``.

    Example:
        >>> with atomic_write("weights.npz") as f:
        ...     np.savez(f, w=w)
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write supports modes 'w' and 'wb'. Received: mode={mode!r}")
    target = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(target))
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        text = {"encoding": encoding, "newline": newline} if mode == "w" else {}
        with _fdopen(fd, mode, text) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        # An OSError built from a message alone (no errno) would lose that message
        # once it had a filename, so only errors from the OS get the path.
        if isinstance(exc, OSError) and exc.strerror is not None and _names_temp(
            exc, directory, name
        ):
            exc.filename = target  # name the file the user asked for, not our temp file
        raise
    _fsync_dir(directory)


def check_writable_dir(path: str | os.PathLike[str]) -> None:
    """Raise a clear error now if files cannot be created in the folder ``path``.

    It really creates (and removes) an empty temp file there, so it catches
    what permission bits alone would not: a read-only mount, running as root...

    Args:
        path: The folder that will hold the files (``""`` means the current one).

    Raises:
        FileNotFoundError: if the folder does not exist.
        NotADirectoryError: if ``path`` is not a folder.
        OSError: (of the original type, e.g. ``PermissionError``) if a file
            cannot be created in it.
    """
    directory = os.fspath(path) or "."
    if not os.path.exists(directory):
        raise FileNotFoundError(
            errno.ENOENT,
            f"Cannot write files into a folder that does not exist; create it first. "
            f"Received: path={directory!r}",
        )
    if not os.path.isdir(directory):
        raise NotADirectoryError(
            errno.ENOTDIR, f"Expected a folder to write files into. Received: path={directory!r}"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".aiofit-probe.", suffix=".tmp")
    except OSError as exc:
        raise type(exc)(
            exc.errno,
            f"Cannot create files in this folder ({exc.strerror}). Received: path={directory!r}",
        ) from exc
    os.close(fd)
    os.unlink(probe)


def _names_temp(exc: OSError, directory: str, name: str) -> bool:
    """Whether ``exc`` names no file, or only one of our temp files."""
    if exc.filename2 is not None:
        return False
    if exc.filename is None:
        return True
    temp = os.path.join(directory, f".{name}.")
    return isinstance(exc.filename, str) and exc.filename.startswith(temp)


def _fdopen(fd: int, mode: str, text: dict[str, Any]) -> IO[Any]:
    try:
        return os.fdopen(fd, mode, **text)
    except BaseException:
        os.close(fd)
        raise


def _mode_for(target: str) -> int:
    """The permission bits the new file gets: the old file's, else the default for new files."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # mkstemp makes 0o600 files; a replaced file should look like one made by open().
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(s for s in status if s.startswith("Umask:"))
        return int(line.split()[1], 8)
    # No /proc: reading the umask means setting it, briefly (not thread-safe, but harmless
    # here since we put the same value back at once).
    current = os.umask(0o022)
    os.umask(current)
    return current


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":
        return
    # Some systems refuse to open or fsync a folder; the rename is done and atomic anyway.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
