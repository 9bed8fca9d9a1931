"""The sans-I/O half of :mod:`aiofit.sources.http`: response bytes in, batches out.

:class:`RecordSpec` says which fields feed ``x``, ``y`` and ``sample_weight``;
:class:`LineParser` cuts an ``"ndjson"`` or ``"csv"`` body into lines, checks each
record and stacks them into batches; :class:`FrameParser` decodes an ``"npy"`` body
(the :mod:`aiofit.sources.wire` frames) and re-cuts it into ``batch_size`` samples.
Neither touches a socket: :class:`aiofit.sources.HttpSource` feeds them the chunks.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._exceptions import DataError, ProtocolError
from .wire import FrameDecoder

__all__ = ["Batch", "Field", "FrameParser", "LineParser", "RecordSpec"]

# The logger name http.py documents: users configure one name for the whole source.
logger = logging.getLogger("aiofit.sources.http")

Batch = tuple[np.ndarray, ...]
Field = str | Sequence[str]


class RecordSpec:
    """Which fields feed x, y and sample_weight; ``scalar`` marks one-field roles."""

    def __init__(self, fields: dict[str, tuple[str, ...]], scalar: dict[str, bool]) -> None:
        self.fields = fields
        self.scalar = scalar

    @classmethod
    def build(
        cls, fmt: str, x: Field | None, y: Field | None, w: str | None, batch_size: int | None
    ) -> RecordSpec:
        if batch_size is None:
            raise ValueError(f"batch_size=None is only for format='npy'. Received: format={fmt!r}")
        if x is None:
            raise ValueError(
                f"format={fmt!r} needs x: the key (or column) holding the inputs, or a list "
                "of them. Received: x=None"
            )
        if w is not None and y is None:
            raise ValueError(
                f"sample_weight needs y: a batch is (x, y, sample_weight). Received: "
                f"sample_weight={w!r}, y=None"
            )
        fields: dict[str, tuple[str, ...]] = {}
        scalar: dict[str, bool] = {}
        for role, value in (("x", x), ("y", y), ("sample_weight", w)):
            if value is None:
                continue
            if isinstance(value, str):
                fields[role], scalar[role] = (value,), True
            elif role != "sample_weight" and _all_str(value):
                fields[role], scalar[role] = tuple(value), False
            else:
                kind = "a key name" if role == "sample_weight" else "a key name or a list of them"
                raise TypeError(f"{role} must be {kind}. Received: {role}={value!r}")
        return cls(fields, scalar)


def _all_str(value: Any) -> bool:
    return (
        isinstance(value, Sequence) and len(value) > 0 and all(isinstance(v, str) for v in value)
    )


class _RecordError(Exception):
    """A malformed record; the parser adds the line number and decides raise or skip."""


class LineParser:
    """Bytes in, batches out, for the line formats (sans I/O).

    ``options`` are from_http's ``on_error``, ``max_line_bytes``, ``dtype`` and
    ``y_dtype``; ``on_skip(message, skipped_in_pass)`` hears of each skipped record.
    """

    def __init__(
        self,
        spec: RecordSpec,
        fmt: str,
        url: str,
        batch_size: int | None,
        options: Mapping[str, Any],
        on_skip: Callable[[str, int], None],
    ) -> None:
        self._spec = spec
        self._url = url
        self._format = fmt
        self._batch_size = batch_size
        self._on_skip = on_skip
        self._csv = fmt == "csv"
        self._columns: dict[str, int] | None = None
        self._width = 0
        self._skip = options["on_error"] == "skip"
        self._max_line = options["max_line_bytes"]
        dtype, y_dtype = options["dtype"], options["y_dtype"]
        self._dtypes = {"x": dtype, "y": y_dtype, "sample_weight": dtype}
        self._int_y = np.issubdtype(y_dtype, np.integer)
        self._shapes: dict[str, tuple[tuple[int, ...], int]] = {}
        self._rows: dict[str, list[Any]] = {role: [] for role in spec.fields}
        self._buffer = bytearray()
        self._lineno = 0
        self._skipped = 0

    def feed(self, chunk: bytes) -> list[Batch]:
        """Take the next piece of the body; return the batches it completed."""
        buf = self._buffer
        buf += chunk
        out: list[Batch] = []
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            self._line(bytes(buf[start:end]), out)
            start = end + 1
        del buf[:start]
        if len(buf) > self._max_line:
            raise DataError(
                f"{self._where(self._lineno + 1)}: the line is longer than max_line_bytes="
                f"{self._max_line}. Received: {bytes(buf[:80])!r}..."
            )
        return out

    def finish(self) -> list[Batch]:
        """The body has ended: the last line (if unterminated) and the partial batch."""
        out: list[Batch] = []
        if self._buffer:
            self._line(bytes(self._buffer), out)
            self._buffer.clear()
        if self._rows["x"]:
            out.append(self._take())
        if self._skipped:
            logger.warning(
                "skipped %d malformed line(s) of %d from %s", self._skipped, self._lineno,
                self._url,
            )  # fmt: skip
        return out

    def _where(self, lineno: int) -> str:
        return f"{self._format} line {lineno} of {self._url}"

    def _line(self, raw: bytes, out: list[Batch]) -> None:
        self._lineno += 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            return  # blank lines separate nothing: not records, not errors
        if self._csv and self._columns is None:
            self._columns = self._header(raw)
            return
        try:
            values = self._csv_values(raw) if self._csv else self._json_values(raw)
            record = {role: self._check(role, v) for role, v in values.items()}
        except _RecordError as exc:
            message = f"{self._where(self._lineno)}: {exc}. Received: {_snippet(raw)}"
            if not self._skip:
                raise DataError(message) from None
            self._skipped += 1
            self._on_skip(message, self._skipped)
            return
        for role, value in record.items():
            self._rows[role].append(value)
        if len(self._rows["x"]) == self._batch_size:
            out.append(self._take())

    def _take(self) -> Batch:
        batch = tuple(
            np.asarray(self._rows[role], dtype=self._dtypes[role]) for role in self._rows
        )
        for rows in self._rows.values():
            rows.clear()
        return batch

    def _json_values(self, raw: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise _RecordError(f"not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise _RecordError(f"expected a JSON object, got a {type(obj).__name__}")
        values = {}
        for role, keys in self._spec.fields.items():
            for key in keys:
                if key not in obj:
                    raise _RecordError(f"missing key {key!r} (for {role})")
            if self._spec.scalar[role]:
                values[role] = _number_tree(obj[keys[0]], f"{role} key {keys[0]!r}")
            else:
                values[role] = [_number(obj[k], f"{role} key {k!r}") for k in keys]
        return values

    def _csv_values(self, raw: bytes) -> dict[str, Any]:
        assert self._columns is not None
        try:
            fields = next(csv.reader([raw.decode()]))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _RecordError(f"not a CSV row ({exc})") from None
        if len(fields) != self._width:
            raise _RecordError(f"expected {self._width} fields, got {len(fields)}")
        values: dict[str, Any] = {}
        for role, names in self._spec.fields.items():
            row = [_csv_number(fields[self._columns[n]], f"{role} column {n!r}") for n in names]
            values[role] = row[0] if self._spec.scalar[role] else row
        return values

    def _header(self, raw: bytes) -> dict[str, int]:
        try:
            names = [n.strip() for n in next(csv.reader([raw.decode()]))]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(
                f"{self._where(self._lineno)}: unreadable CSV header ({exc})"
            ) from None
        columns = {name: i for i, name in reversed(list(enumerate(names)))}
        for role, wanted in self._spec.fields.items():
            missing = [n for n in wanted if n not in columns]
            if missing:
                raise DataError(
                    f"{self._where(self._lineno)}: the CSV header has no column(s) {missing} "
                    f"(for {role}). Received: header {names}"
                )
        self._width = len(names)
        return columns

    def _check(self, role: str, value: Any) -> Any:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except ValueError:  # nested lists of unequal lengths
            raise _RecordError(f"{role} is a ragged list (rows of different lengths)") from None
        if role == "x" and arr.ndim == 0:
            arr = arr.reshape(1)
        if role == "sample_weight" and arr.ndim:
            raise _RecordError(f"sample_weight must be one number, got shape {arr.shape}")
        seen = self._shapes.setdefault(role, (arr.shape, self._lineno))
        if arr.shape != seen[0]:
            raise _RecordError(
                f"{role} has shape {arr.shape}, unlike the first record's {seen[0]} "
                f"(line {seen[1]})"
            )
        if role != "y" and not np.isfinite(arr).all():
            raise _RecordError(f"{role} has a non-finite value")
        if role == "sample_weight" and arr < 0:
            raise _RecordError(f"sample_weight must be non-negative, got {float(arr)}")
        if role == "y" and self._int_y and not (np.isfinite(arr) & (arr == np.round(arr))).all():
            raise _RecordError(f"y must be whole numbers for y_dtype={self._dtypes['y']}")
        return arr


def _number(value: Any, what: str) -> float:
    if type(value) is not int and type(value) is not float:  # bool is not a number here
        raise _RecordError(f"{what} must be a number, got {_kind(value)}")
    try:
        return float(value)
    except OverflowError:
        raise _RecordError(f"{what} is too large for a float") from None


def _number_tree(value: Any, what: str) -> Any:
    """A number or a (nested) list of numbers, checked leaf by leaf."""
    if isinstance(value, list):
        if not value:
            raise _RecordError(f"{what} is an empty list")
        return [_number_tree(v, what) for v in value]
    if type(value) is not int and type(value) is not float:
        raise _RecordError(f"{what} must be a number or a list of numbers, got {_kind(value)}")
    return _number(value, what)


def _csv_number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _RecordError(f"{what} is not a number: {text!r}") from None


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__} {_snippet(value)}"


def _snippet(value: Any, limit: int = 120) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class FrameParser:
    """Bytes in, batches out, for ``"npy"``: wire-format frames re-cut to ``batch_size``."""

    def __init__(self, batch_size: int | None, max_frame_bytes: int, url: str) -> None:
        self._decoder = FrameDecoder(max_frame_bytes=max_frame_bytes)
        self._batch_size = batch_size
        self._url = url
        self._expected = 0
        self._ended = False
        self._parts: list[Batch] = []
        self._count = 0

    def feed(self, chunk: bytes) -> list[Batch]:
        """Take the next piece of the body; return the batches it completed."""
        self._decoder.feed(chunk)
        out: list[Batch] = []
        while (frame := self._decoder.next_frame()) is not None:
            if self._ended:
                raise ProtocolError(
                    f"{self._url}: frame {frame.sequence} after the END frame (sequence "
                    f"{self._expected}). Received: sequence {frame.sequence}"
                )
            if frame.sequence != self._expected:
                raise ProtocolError(
                    f"{self._url}: frame {frame.sequence} out of order, expected frame "
                    f"{self._expected} (a gap or a duplicate). Received: sequence "
                    f"{frame.sequence}"
                )
            if frame.end:
                self._ended = True
                continue
            self._expected += 1
            self._add(frame.arrays, frame.sequence, out)
        return out

    def finish(self) -> list[Batch]:
        """The body has ended: it must not stop inside a frame; flush the partial batch."""
        self._decoder.end_of_input()
        if not self._count:
            return []
        return [self._cut(self._count)]

    def _add(self, arrays: Batch, sequence: int, out: list[Batch]) -> None:
        if self._batch_size is None:
            out.append(arrays)
            return
        if self._parts:
            first = self._parts[0]
            if [a.shape[1:] for a in arrays] != [a.shape[1:] for a in first]:
                raise DataError(
                    f"{self._url}, frame {sequence}: its arrays cannot join the batch being "
                    f"filled (different array count or per-sample shapes). Received: shapes "
                    f"{[a.shape for a in arrays]} after {[a.shape for a in first]}"
                )
        self._parts.append(arrays)
        self._count += len(arrays[0])
        while self._count >= self._batch_size:
            out.append(self._cut(self._batch_size))

    def _cut(self, n: int) -> Batch:
        parts = self._parts
        if len(parts) == 1:
            joined = parts[0]  # one frame: slice views, no copy per cut
        else:
            joined = tuple(np.concatenate(arrs) for arrs in zip(*parts, strict=True))
        rest = tuple(a[n:] for a in joined)
        self._parts = [rest] if len(rest[0]) else []
        self._count -= n
        return tuple(a[:n] for a in joined)
