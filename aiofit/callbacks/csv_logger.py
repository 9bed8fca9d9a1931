"""CSVLogger: one CSV row of epoch logs per epoch, the file rewritten atomically each time."""

from __future__ import annotations

import collections.abc
import csv
import io
import os
from typing import Any

import anyio
import numpy as np

from .._atomic import atomic_write, check_writable_dir
from .base import Callback, Logs

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Stream epoch results to a CSV file, as Keras 3 does, crash-safe.

    The first epoch fixes the columns: ``epoch`` (0-based), then the logs'
    keys sorted, plus any ``val_`` name in ``model.metrics_names`` not yet in
    the logs. A key missing from a later epoch is written ``NA``; a key that
    appears later is not added. Rows use the ``csv`` module's Excel dialect
    (``\\r\\n`` line ends, as Keras's file has) with ``separator`` as delimiter.

    Unlike Keras, which appends to an open file, every epoch rewrites the whole
    (small) file through an atomic replace, from a worker thread: the file on
    disk is always complete and flushed to disk, whatever instant a crash hits.

    Args:
        filename: The CSV file, e.g. ``"run/log.csv"``. Its folder must exist.
        separator: The string that separates the fields.
        append: If True and the file exists, keep its rows and add to them;
            a non-empty file keeps its columns (read from its header line), and
            no second header is written. If False, the file is overwritten
            (emptied at the start of training, as Keras does).

    Raises:
        OSError: at the start of ``fit`` if the folder is missing or read-only;
            later, the original error of a failed write, naming the file.

    Example:
        >>> await model.fit(x, y, epochs=5, callbacks=[CSVLogger("training.csv")])
    """

    def __init__(
        self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(
                f"`separator` must be a one-character string. Received: separator={separator!r}"
            )
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys: list[str] | None = None
        self._text = ""

    async def on_train_begin(self, logs: Logs | None = None) -> None:
        """Checks the folder, then reads (``append``) or empties the file, in a worker thread."""
        self.keys = None
        self._text = ""
        await anyio.to_thread.run_sync(self._open)

    def _open(self) -> None:
        check_writable_dir(os.path.dirname(self.filename))
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8", newline="") as file:
                self._text = file.read()
            header = next(csv.reader(io.StringIO(self._text), delimiter=self.sep), None)
            if header:
                self.keys = header[1:]
        else:
            _write(self.filename, self._text)

    async def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Adds this epoch's row and rewrites the file atomically."""
        logs = logs or {}
        out = io.StringIO()
        writer = self._writer(out, logs)
        row = {"epoch": epoch, **{key: _cell(logs.get(key, "NA")) for key in self.keys or []}}
        writer.writerow(row)
        text = self._text + out.getvalue()
        await anyio.to_thread.run_sync(_write, self.filename, text)
        self._text = text

    def _writer(self, out: io.StringIO, logs: Logs) -> csv.DictWriter[str]:
        header = self.keys is None
        if self.keys is None:
            expected = getattr(self.model, "metrics_names", None) or []
            self.keys = sorted(logs) + [
                name for name in expected if name.startswith("val_") and name not in logs
            ]
        writer = csv.DictWriter(
            out, fieldnames=["epoch", *self.keys], delimiter=self.sep, extrasaction="ignore"
        )
        if header:
            writer.writeheader()
        return writer


def _cell(value: Any) -> Any:
    """Keras's rendering: strings as they are, 1-D iterables as ``"[a, b]"``."""
    if isinstance(value, np.generic):
        # The csv module writes a float subclass with repr(): "np.float64(0.5)" in numpy 2.
        value = value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (
        isinstance(value, np.ndarray) and value.ndim == 0
    ):
        return f'"[{", ".join(map(str, value))}]"'
    return value


def _write(filename: str, text: str) -> None:
    with atomic_write(filename, "w", encoding="utf-8", newline="") as file:
        file.write(text)
