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

import logging
from collections.abc import AsyncIterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import anyio
import numpy as np

from ..callbacks.base import Callback, Logs
from ._http_records import Batch, Field, FrameParser, LineParser, RecordSpec
from .wire import DEFAULT_MAX_FRAME_BYTES

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpSource", "from_http"]

logger = logging.getLogger(__name__)

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
    spec = None if format == "npy" else RecordSpec.build(format, x, y, sample_weight, batch_size)
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

    def __init__(self, url: str, fmt: str, batch_size: int | None, spec: RecordSpec | None,
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

    def _parser(self) -> LineParser | FrameParser:
        opts = self._options
        if self._spec is None:
            return FrameParser(self.batch_size, opts["max_frame_bytes"], self.url)
        return LineParser(self._spec, self.format, self.url, self.batch_size, opts, self._skip)

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
