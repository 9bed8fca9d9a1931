"""Redis Streams as a training source, read with a consumer group, trained exactly once.

:func:`from_redis_stream` reads entries with ``XREADGROUP`` and stacks every
``batch_size`` of them into one ``(x, y[, sample_weight])`` batch, as the fields
spec says (:class:`StreamField`; :func:`encode_entry` writes matching entries).
It uses redis-py's asyncio client, so it runs on **asyncio and uvloop only**: on
trio the first read raises a ``RuntimeError`` saying so.

Delivery guarantee, with :class:`aiofit.callbacks.BackupAndRestore`:

1. Entries are read in id order: first this consumer's own pending entries
   (``XREADGROUP ... 0``: delivered to it before, never acknowledged), then new
   ones (``>``). Reading never acknowledges anything.
2. The stream is a *self-positioning stream* for the engine
   (:class:`aiofit.engine.source_position.ResumableStream`): each backup's resume
   point holds the id of the last entry of the last *trained* batch (not of what
   was read ahead), written atomically with the weights, optimizer and rng states.
3. Once that backup is durable, ``BackupAndRestore`` awaits
   :meth:`FitProgress.commit <aiofit.engine.resume.FitProgress.commit>`, and the
   stream acknowledges (``XACK``) this consumer's pending entries up to that id.
   Entries trained after the last backup stay pending.
4. After a crash (SIGKILL included), rerunning the same ``fit`` (same stream,
   group, consumer, batch size and model) restores the backup and hands the
   stream its last trained id: the stream acknowledges pending entries up to it
   (they were trained and the backup covers them) and re-delivers the rest, in
   order, before new ones. Batches are cut at the same places, so the weights end
   bit-identical to an uninterrupted run: no entry lost, none trained twice.
5. When ``fit`` completes, ``BackupAndRestore`` writes and commits a last backup
   before deleting it, so every trained entry ends up acknowledged; entries read
   ahead but never trained (early stopping) stay pending for the next run.

Without a backup callback nothing is acknowledged (there is no durable
checkpoint): entries stay pending and a rerun of the consumer trains them again.
A malformed entry raises :class:`aiofit.DataError` naming its id; it stays
pending (delete or acknowledge it by hand before rerunning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np

from ._one_shot import OneShotStream
from ._redis_fields import StreamField, decode_batch, encode_entry, resolve_fields

__all__ = ["RedisStream", "StreamField", "StreamStatistics", "encode_entry", "from_redis_stream"]

logger = logging.getLogger(__name__)
INSTALL = 'from_redis_stream needs redis-py: pip install "aiofit[redis]"'
_ACK_PAGE = 1000

Entry = tuple[str, dict[bytes, bytes]]


@dataclass
class StreamStatistics:
    """What a :class:`RedisStream` has done so far (this process).

    Attributes:
        entries: entries stacked into batches.
        batches: batches handed out.
        redelivered: of ``entries``, those read from this consumer's pending list.
        acked: entries acknowledged.
    """

    entries: int = 0
    batches: int = 0
    redelivered: int = 0
    acked: int = 0


class RedisStream(OneShotStream):
    """Batches read from a Redis stream with a consumer group (see :func:`from_redis_stream`).

    One-shot, like an async generator. It connects on the first ``anext`` and
    closes its connections at the end of the stream, on error, on cancellation
    and on :meth:`aclose` (``fit`` calls it; or use ``async with``).
    """

    def __init__(
        self, url: str, stream: str, group: str, consumer: str, batch_size: int, *,
        fields: dict[str, StreamField], block_ms: int | None, count: int,
        create_group: bool, start_id: str, stop_on_idle: bool,
    ) -> None:  # fmt: skip
        self.url, self.stream, self.group, self.consumer = url, stream, group, consumer
        self.batch_size, self.fields, self.count = batch_size, fields, count
        self.block_ms, self.stop_on_idle = block_ms, stop_on_idle
        self.create_group, self.start_id = create_group, start_id
        self._client: Any = None
        self._done = False
        self._reading_pending = True
        self._pending_cursor = "0"
        self._buffer: deque[Entry] = deque()
        self._resumed_id: str | None = None  # the last trained id, from a backup
        self._resume_acked = False
        # Last entry id of each batch handed out; _handed[0] is batch number _base.
        self._handed: deque[str] = deque()
        self._base = 0
        self._stats = StreamStatistics()

    def statistics(self) -> StreamStatistics:
        """A snapshot of entries and batches read, and entries acknowledged."""
        return StreamStatistics(**vars(self._stats))

    async def aclose(self) -> None:
        """Close the connections; later iteration yields nothing (commits still work)."""
        self._done = True
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.aclose()

    # The engine's ResumableStream protocol.

    def stream_state(self, trained: int) -> dict[str, Any]:
        """The state once the first ``trained`` batches handed out have trained."""
        last = self._resumed_id if trained == 0 else self._handed[trained - 1 - self._base]
        return {"stream": self.stream, "group": self.group, "consumer": self.consumer,
                "last_id": last, "batches": trained}  # fmt: skip

    def resume_from(self, state: dict[str, Any]) -> None:
        """Start after the last trained entry of ``state`` (from a backup).

        Raises:
            ValueError: the state is of another stream, group or consumer.
        """
        mine = {"stream": self.stream, "group": self.group, "consumer": self.consumer}
        theirs = {key: state.get(key) for key in mine}
        last = state.get("last_id")
        if theirs != mine or not (last is None or _is_id(last)):
            raise ValueError(
                f"The backup was taken reading another Redis stream: it resumes {mine} only "
                f"with a state of the same stream, group and consumer. Received: {state!r:.200}"
            )
        self._resumed_id, self._resume_acked = last, False

    async def commit(self, state: dict[str, Any]) -> None:
        """A backup holding ``state`` is durable: acknowledge the entries it covers."""
        last = state.get("last_id")
        if last is not None:
            async with self._connection() as client:
                await self._ack_through(client, last)
        trained = int(state.get("batches", 0))
        while self._handed and self._base < trained - 1:  # keep the last: asked for again
            self._handed.popleft()
            self._base += 1

    # Reading.

    async def _next_batch(self) -> tuple[np.ndarray, ...] | None:
        _require_asyncio()
        client = await self._open()
        if not self._resume_acked:
            if self._resumed_id is not None:
                await self._ack_through(client, self._resumed_id)
            self._resume_acked = True
        entries: list[Entry] = []
        while len(entries) < self.batch_size:
            if not self._buffer and not await self._fill(client):
                break
            entries.append(self._buffer.popleft())
        if not entries:
            return None
        batch = decode_batch(entries, self.fields)
        self._handed.append(entries[-1][0])
        self._stats.entries += len(entries)
        self._stats.batches += 1
        return batch

    async def _fill(self, client: Any) -> bool:
        """Read more entries into the buffer; False when the stream is over (idle)."""
        while self._reading_pending:
            reply = await client.xreadgroup(
                self.group, self.consumer, {self.stream: self._pending_cursor}, count=self.count
            )
            entries = _entries(reply)
            if not entries:
                self._reading_pending = False
                break
            self._pending_cursor = entries[-1][0]
            live = [(entry_id, data) for entry_id, data in entries if data]
            if len(live) < len(entries):
                gone = [entry_id for entry_id, data in entries if not data]
                logger.warning("pending entries %s were deleted from %r; skipped", gone,
                               self.stream)  # fmt: skip
            self._stats.redelivered += len(live)
            self._buffer.extend(live)
            if live:
                return True
        while True:
            reply = await client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=self.count,
                block=self.block_ms,
            )  # fmt: skip
            entries = _entries(reply)
            if entries:
                self._buffer.extend(entries)
                return True
            if self.stop_on_idle:
                return False

    async def _ack_through(self, client: Any, last_id: str) -> None:
        """Acknowledge this consumer's pending entries with ids up to ``last_id``."""
        while True:
            pending = await client.xpending_range(
                self.stream, self.group, min="-", max=last_id, count=_ACK_PAGE,
                consumername=self.consumer,
            )  # fmt: skip
            if not pending:
                return
            ids = [item["message_id"] for item in pending]
            self._stats.acked += int(await client.xack(self.stream, self.group, *ids))
            if len(ids) < _ACK_PAGE:
                return

    async def _open(self) -> Any:
        if self._client is None:
            self._client = await self._connect()
        return self._client

    async def _connect(self) -> Any:
        import redis.asyncio as aioredis
        from redis.exceptions import ResponseError

        client = aioredis.Redis.from_url(self.url, client_name=f"aiofit:{self.consumer}")
        if self.create_group:
            try:
                await client.xgroup_create(
                    self.stream, self.group, id=self.start_id, mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    await client.aclose()
                    raise
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await client.aclose()
                raise
        return client

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """The live client, or a short-lived one once the stream is closed."""
        _require_asyncio()
        if self._client is not None:
            yield self._client
            return
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url, client_name=f"aiofit:{self.consumer}")
        try:
            yield client
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()


def _entries(reply: Any) -> list[Entry]:
    """The ``(id, fields)`` pairs of an XREADGROUP reply on one stream (RESP2)."""
    if not reply:
        return []
    # A deleted entry still pending comes back with no fields.
    return [(_text(entry_id), data or {}) for entry_id, data in reply[0][1]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _is_id(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    ms, _, seq = value.partition("-")
    return ms.isdigit() and seq.isdigit()


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "from_redis_stream runs on asyncio (or uvloop) only: redis-py's client is "
            "asyncio-only. Run fit with aiofit.run or anyio's asyncio backend. Received: "
            "an event loop that is not asyncio (trio?)"
        ) from None


def from_redis_stream(
    url: str,
    stream: str,
    group: str,
    consumer: str,
    batch_size: int,
    *,
    fields: Mapping[str, StreamField | str] | None = None,
    block_ms: int | None = 1000,
    count: int | None = None,
    create_group: bool = True,
    start_id: str = "0",
    stop_on_idle: bool = True,
) -> RedisStream:
    """Batches from a Redis stream, read as ``consumer`` of consumer group ``group``.

    Entries are acknowledged only once a durable :class:`~aiofit.callbacks.BackupAndRestore`
    backup covers the batch they were trained in, so a crashed ``fit`` rerun with the
    same backup trains every entry exactly once (see the module docs). asyncio and
    uvloop only (redis-py's asyncio client); not trio.

    Args:
        url: e.g. ``"redis://127.0.0.1:6379/0"`` (``redis.asyncio.Redis.from_url``).
        stream: the stream's key.
        group: the consumer group (consumers of one group split the entries).
        consumer: this reader's name in the group; rerun with the same name to
            resume (its pending entries are its own).
        batch_size: entries per batch (the last one may be short when the stream
            goes idle).
        fields: role (``"x"``, ``"y"``, ``"sample_weight"``) to :class:`StreamField`
            or a field name; default raw float32 ``x`` and ``y``. Produce entries
            with :func:`encode_entry` and the same spec.
        block_ms: how long one read waits for new entries (None: not at all).
        count: entries fetched per round trip (default ``batch_size``).
        create_group: create the group (and the stream) if missing.
        start_id: where a group created here starts: ``"0"`` the whole stream,
            ``"$"`` only entries added from now on.
        stop_on_idle: end the stream when a read waited ``block_ms`` and got
            nothing (a backlog); False waits for entries forever (use
            ``steps_per_epoch``).

    Raises:
        ImportError: redis-py is not installed.
        ValueError, TypeError: a bad argument.
        aiofit.DataError: (while iterating) an entry does not match ``fields``;
            the message names its id.

    Example:
        >>> data = from_redis_stream("redis://127.0.0.1:6379", "train", "fit", "worker-1",
        ...                          batch_size=32)  # doctest: +SKIP
        >>> await model.fit(data, callbacks=[BackupAndRestore("backup", save_freq=50)])
    """
    try:
        import redis.asyncio  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL) from exc
    for name, value in (("url", url), ("stream", stream), ("group", group),
                        ("consumer", consumer), ("start_id", start_id)):  # fmt: skip
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a non-empty str. Received: {name}={value!r}")
    for name, number, minimum in (("batch_size", batch_size, 1), ("count", count, 1),
                                  ("block_ms", block_ms, 0)):  # fmt: skip
        if number is None and name != "batch_size":
            continue
        if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}. Received: {name}={number!r}")
    return RedisStream(
        url, stream, group, consumer, batch_size, fields=resolve_fields(fields),
        block_ms=block_ms, count=count or batch_size, create_group=create_group,
        start_id=start_id, stop_on_idle=stop_on_idle,
    )  # fmt: skip
