"""HTTP streams: batches read incrementally from a streaming HTTP response (extra ``http``).

``from_http(url, ...)`` returns an :class:`HttpSource`, an async iterable of
``(x, y[, sample_weight])`` batches that ``fit``/``evaluate``/``predict`` accept as is.
Each iteration (each epoch, with ``steps_per_epoch=None``) sends one ``GET`` with
httpx and parses the body as it arrives, never holding more than one line (or one
frame) plus the batch being filled. With ``steps_per_epoch=N`` the engine keeps one
live iteration, so a never-ending endpoint is read as one response across epochs.

Body formats:

* ``"ndjson"``: one JSON object per line. ``x="features"`` names a key holding a
  number or a (nested) list of numbers; ``x=["f1", "f2"]`` names several keys, each
  a number. ``y`` likewise; ``sample_weight`` names a key holding a number.
* ``"csv"``: a header row of column names, then one record per line (no newlines
  inside quoted fields). ``x``/``y`` name a column or a list of columns, and
  ``sample_weight`` a column.
* ``"npy"``: the aiofit batch wire format (:mod:`aiofit.sources.wire`): frames of
  ``.npy`` arrays ``x, y[, sample_weight]`` read with ``allow_pickle=False``. No field
  spec; frames are re-cut into ``batch_size`` samples (``batch_size=None`` keeps
  them as sent). Broken frames always raise :class:`aiofit.sources.ProtocolError`.

Shapes: ``x`` is ``(n, features...)`` (a single number per record gives one column);
``y`` is ``(n,)`` for a key or column holding one number, else ``(n, k...)``;
``sample_weight`` is ``(n,)``. The last, partial batch of a response is yielded too.

Malformed lines (bad JSON or UTF-8, a missing key, a non-numeric value, a width
unlike the first record's, a non-finite input or weight, a negative weight, a
non-integer label with an integer ``y_dtype``) raise :class:`aiofit.DataError` naming
the line number, or with ``on_error="skip"`` are skipped, counted in
:attr:`HttpSource.skipped` and logged on the ``aiofit.sources.http`` logger;
:meth:`HttpSource.skip_counter` puts the count into each epoch's logs (and History).
An HTTP error status raises ``httpx.HTTPStatusError`` (its message has the URL).
Works on asyncio, uvloop and trio: httpx runs on anyio.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import anyio
import numpy as np

from .._exceptions import DataError, ProtocolError
from ..callbacks.base import Callback, Logs
from .wire import DEFAULT_MAX_FRAME_BYTES, FrameDecoder

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpSource", "from_http"]

logger = logging.getLogger(__name__)

Batch = tuple[np.ndarray, ...]
Field = str | Sequence[str]
_FORMATS = ("ndjson", "csv", "npy")
_LOGGED_PER_PASS = 10  # skipped lines logged one by one per response; the rest in the summary


def _import_httpx() -> ModuleType:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError(
            "from_http needs the `httpx` package, which is in aiofit's `http` extra: "
            'pip install "aiofit[http]"'
        ) from exc
    return httpx


def from_http(
    url: str,
    format: Literal["ndjson", "csv", "npy"] = "ndjson",
    batch_size: int | None = 32,
    *,
    x: Field | None = None,
    y: Field | None = None,
    sample_weight: str | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout | None = 30.0,
    client: httpx.AsyncClient | None = None,
    dtype: str | np.dtype = "float32",
    y_dtype: str | np.dtype | None = None,
    max_line_bytes: int = 1 << 20,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> HttpSource:
    """Batches streamed from ``url``, parsed as they arrive.

    Example:
        >>> source = from_http("http://feed.local/rows", "ndjson", 64,
        ...                    x="features", y="label")  # doctest: +SKIP
        >>> await model.fit(source, epochs=3)  # doctest: +SKIP

    Args:
        url: the address to ``GET``, once per iteration.
        format: ``"ndjson"``, ``"csv"`` or ``"npy"`` (see the module docs).
        batch_size: records per batch; ``None`` (``"npy"`` only) keeps frames as sent.
        x: the input field(s): a key/column, or a list of them (not for ``"npy"``).
        y: the target field(s), or None for input-only batches (``predict``).
        sample_weight: the key/column of per-record weights, or None.
        on_error: ``"raise"`` a DataError at a malformed line, or ``"skip"`` it.
        headers: extra request headers.
        params: query parameters.
        timeout: seconds for connecting and for each read (an ``httpx.Timeout`` for
            finer control, None for no limit: a live feed may idle), also with ``client``.
        client: an ``httpx.AsyncClient`` to send with; it stays open (yours to close).
            Without one, each iteration opens its own client and closes it.
        dtype: the dtype of ``x`` and ``sample_weight`` (line formats).
        y_dtype: the dtype of ``y`` (default ``dtype``); an integer dtype requires
            whole-number labels.
        max_line_bytes: a longer line is refused (DataError) without being held.
        max_frame_bytes: the ``"npy"`` frame size limit.

    Raises:
        ImportError: httpx is not installed.
        ValueError, TypeError: a bad argument (before any request is sent).
    """
    _import_httpx()
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}. Received: format={format!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'. Received: on_error={on_error!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int. Received: batch_size={batch_size!r}")
    for name, limit in (("max_line_bytes", max_line_bytes), ("max_frame_bytes", max_frame_bytes)):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{name} must be a positive int. Received: {name}={limit!r}")
    spec = None if format == "npy" else _Spec.build(format, x, y, sample_weight, batch_size)
    if format == "npy" and (x, y, sample_weight) != (None, None, None):
        raise ValueError(
            "format='npy' carries positional arrays (x, y[, sample_weight]): leave x, y "
            f"and sample_weight unset. Received: x={x!r}, y={y!r}, "
            f"sample_weight={sample_weight!r}"
        )
    return HttpSource(
        url, format, batch_size, spec, on_error=on_error, headers=headers, params=params,
        timeout=timeout, client=client, dtype=np.dtype(dtype),
        y_dtype=np.dtype(dtype if y_dtype is None else y_dtype),
        max_line_bytes=max_line_bytes, max_frame_bytes=max_frame_bytes,
    )  # fmt: skip


class _Spec:
    """Which fields feed x, y and sample_weight; ``scalar`` marks one-field roles."""

    def __init__(self, fields: dict[str, tuple[str, ...]], scalar: dict[str, bool]) -> None:
        self.fields = fields
        self.scalar = scalar

    @classmethod
    def build(
        cls, fmt: str, x: Field | None, y: Field | None, w: str | None, batch_size: int | None
    ) -> _Spec:
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


class HttpSource:
    """An async iterable of batches from ``url``; make one with :func:`from_http`.

    Each ``aiter()`` sends a new request, so the source is re-iterable (one request
    per epoch). Ending an iteration early, by ``aclose()`` or by cancellation,
    closes the response, and the client when the source opened it. Iterating by
    hand, close it yourself: ``async with contextlib.aclosing(aiter(source)) as it``.

    Attributes:
        url: the address requested.
        skipped: malformed lines skipped so far (all iterations; ``on_error="skip"``).
        requests: requests sent so far.
    """

    def __init__(self, url: str, fmt: str, batch_size: int | None, spec: _Spec | None,
                 **options: Any) -> None:  # fmt: skip
        self.url = url
        self.format = fmt
        self.batch_size = batch_size
        self.skipped = 0
        self.requests = 0
        self._spec = spec
        self._options = options

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._stream()

    def skip_counter(self, key: str = "skipped_lines") -> Callback:
        """A callback that adds ``{key: self.skipped}`` to each epoch's logs (so to History)."""
        return _SkipCounter(self, key)

    async def _stream(self) -> AsyncIterator[Batch]:
        httpx = _import_httpx()
        opts = self._options
        client = opts["client"]
        owned = client is None
        if owned:
            client = httpx.AsyncClient(follow_redirects=True)
        response = chunks = None
        try:
            request = client.build_request(
                "GET", self.url, headers=opts["headers"], params=opts["params"],
                timeout=opts["timeout"],
            )  # fmt: skip
            self.requests += 1
            response = await client.send(request, stream=True)
            response.raise_for_status()
            parser = self._parser()
            chunks = response.aiter_bytes()
            async for chunk in chunks:
                for batch in parser.feed(chunk):
                    yield batch
            for batch in parser.finish():
                yield batch
        finally:
            # Shielded: a cancelled pass must still close its socket, not leak it.
            with anyio.CancelScope(shield=True):
                if response is not None:
                    await response.aclose()
                if chunks is not None:
                    await _unwind(chunks)
                if owned:
                    await client.aclose()

    def _parser(self) -> _LineParser | _FrameParser:
        opts = self._options
        if self._spec is None:
            return _FrameParser(self.batch_size, opts["max_frame_bytes"], self.url)
        return _LineParser(self, self._spec)

    def _skip(self, message: str, skipped_in_pass: int) -> None:
        self.skipped += 1
        level = logging.WARNING if skipped_in_pass <= _LOGGED_PER_PASS else logging.DEBUG
        logger.log(level, "skipped a malformed record: %s", message)


async def _unwind(chunks: Any) -> None:
    """Finish httpx's body iterator after its response is closed.

    httpx's iterators are nested async generators (encode/httpx#3686), and closing
    the outer one leaves the inner ones suspended for the garbage collector, which
    trio reports as a ResourceWarning. Reading on from the closed response yields
    what was already buffered, then raises through every level, finishing them all.
    """
    with anyio.move_on_after(1):
        try:
            async for _ in chunks:
                pass
        except Exception:  # the read error of the closed socket
            pass
    await chunks.aclose()


class _SkipCounter(Callback):
    def __init__(self, source: HttpSource, key: str) -> None:
        super().__init__()
        self._source = source
        self._key = key

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:
            logs[self._key] = self._source.skipped


class _RecordError(Exception):
    """A malformed record; the parser adds the line number and decides raise or skip."""


class _LineParser:
    """Bytes in, batches out, for the line formats (sans I/O)."""

    def __init__(self, source: HttpSource, spec: _Spec) -> None:
        opts = source._options
        self._source = source
        self._spec = spec
        self._csv = source.format == "csv"
        self._columns: dict[str, int] | None = None
        self._width = 0
        self._skip = opts["on_error"] == "skip"
        self._max_line = opts["max_line_bytes"]
        self._dtypes = {"x": opts["dtype"], "y": opts["y_dtype"], "sample_weight": opts["dtype"]}
        self._int_y = np.issubdtype(opts["y_dtype"], np.integer)
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
                self._source.url,
            )  # fmt: skip
        return out

    def _where(self, lineno: int) -> str:
        return f"{self._source.format} line {lineno} of {self._source.url}"

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
            self._source._skip(message, self._skipped)
            return
        for role, value in record.items():
            self._rows[role].append(value)
        if len(self._rows["x"]) == self._source.batch_size:
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


class _FrameParser:
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
