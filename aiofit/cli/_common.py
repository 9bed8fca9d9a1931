"""What the subcommands share: the CLI's errors, addresses, dataset files, the run wrapper."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .._exceptions import DataError

__all__ = [
    "CliError",
    "UsageError",
    "existing_file",
    "load_dataset",
    "parse_address",
    "run_async",
]

T = TypeVar("T")


class CliError(Exception):
    """A failure at run time: one line on stderr, exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """A bad flag or argument, found before any work starts: exit code 2."""

    exit_code = 2


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6addr]:port"``) as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--tcp expects HOST:PORT with a port in 1..65535. Received: {text!r}")
    return host, int(port)


def existing_file(path: Path, flag: str) -> Path:
    """``path`` if it is a readable file, else a UsageError naming the flag."""
    if not path.is_file():
        raise UsageError(f"{flag}: no such file. Received: {str(path)!r}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{flag}: the file is not readable. Received: {str(path)!r}")
    return path


def load_dataset(path: Path, label_column: str = "label",
                 weight_column: str | None = None) -> tuple[np.ndarray, ...]:
    """``(x, y[, sample_weight])`` from a ``.npz`` (arrays ``x``, ``y``, optional
    ``sample_weight``) or a ``.csv`` (a header row; ``label_column`` is ``y``,
    ``weight_column`` the weights, every other column a float32 feature).

    Raises:
        UsageError: an unknown suffix.
        DataError: the file's contents do not make a dataset.
    """
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path, label_column, weight_column)
    raise UsageError(f"a dataset file must end in .npz or .csv. Received: {str(path)!r}")


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError) as exc:  # not a zip, or an object array (needs pickle)
        raise DataError(f"{path} is not a readable .npz of numeric arrays: {exc}") from exc
    if "x" not in arrays or "y" not in arrays:
        raise DataError(
            f"{path} must hold arrays named 'x' and 'y' (and optionally 'sample_weight'). "
            f"Received: {sorted(arrays)}"
        )
    names = ["x", "y"] + (["sample_weight"] if "sample_weight" in arrays else [])
    return tuple(arrays[name] for name in names)


def _load_csv(path: Path, label: str, weight: str | None) -> tuple[np.ndarray, ...]:
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
        for name in (label, weight):
            if name is not None and name not in header:
                raise DataError(
                    f"{path} has no column {name!r} (name it with --label-column / "
                    f"--weight-column). Received columns: {header}"
                )
        try:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from exc
    if table.shape[0] == 0 or table.shape[1] != len(header):
        raise DataError(
            f"{path} must have one value per column on every row after the header. "
            f"Received: {len(header)} columns in the header, table of shape {table.shape}"
        )
    special = [header.index(label)] + ([header.index(weight)] if weight else [])
    features = [i for i in range(len(header)) if i not in special]
    y = table[:, special[0]]
    y = y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(np.float32)
    arrays: list[np.ndarray] = [table[:, features].astype(np.float32), y]
    if weight:
        arrays.append(table[:, special[1]].astype(np.float32))
    return tuple(arrays)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` with :func:`aiofit.run`, turning the errors a user can act on
    (unreachable hosts, bad data, files) into one-line :class:`CliError`\\ s."""
    from ..engine import run

    try:
        return run(make())
    except _user_errors() as exc:
        raise CliError(_one_line(exc)) from exc


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (
        ConnectionError, OSError, ValueError, TypeError, ImportError,
    )
    try:
        import httpx
    except ImportError:
        pass
    else:
        errors = (*errors, httpx.HTTPError)  # unreachable hosts and error statuses of --http
    try:
        import redis
    except ImportError:
        pass
    else:
        errors = (*errors, redis.RedisError)  # redis-py's ConnectionError is its own class
    return errors


def _one_line(exc: BaseException) -> str:
    kind = type(exc).__name__
    text = " ".join(str(exc).split()) or repr(exc)
    try:  # httpx's transport errors do not say which URL failed
        url = str(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return f"{kind}: {text}"
    return text if url in text else f"{kind}: {text}. Received: url={url!r}"
