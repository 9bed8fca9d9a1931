"""The server end of a TCP batch stream: :func:`serve_batches` and :class:`BatchServer`.

See :mod:`aiofit.sources.tcp` for the stream's behaviour (backpressure, numbering)
and :mod:`aiofit.sources.wire` for the frames.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import numpy as np
from anyio.abc import SocketAttribute, SocketStream, TaskGroup

from .._exception_groups import original_errors
from .wire import DEFAULT_MAX_FRAME_BYTES, encode_batch, encode_end

__all__ = ["BatchServer", "ServerStatistics", "serve_batches"]

logger = logging.getLogger("aiofit.sources.tcp")


@dataclass
class ServerStatistics:
    """What a :class:`BatchServer` has done so far.

    Attributes:
        connections: clients accepted.
        frames_sent: frames (END included) fully handed to the kernel.
        bytes_sent: their bytes.
        sending: sends in progress right now (a blocked send stays counted here).
    """

    connections: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    sending: int = 0


class _Feed:
    """Batches of one source as tuples of 1-3 arrays, epoch after epoch, then None."""

    def __init__(self, data: Any, epochs: int | None) -> None:
        self._data = data  # an entered EpochIterator
        self._epochs = epochs
        self._epoch = 0
        self._batches: AsyncIterator[Any] | None = None
        self.sequence = 0
        self.pending: bytes | None = None  # a frame a dropped client did not take

    async def next(self) -> tuple[np.ndarray, ...] | None:
        while True:
            if self._batches is None:
                done = self._epochs is not None and self._epoch >= self._epochs
                if done or self._data.exhausted:
                    return None
                self._batches = aiter(self._data.epoch(self._epoch))
            try:
                x, y, sw = await anext(self._batches)
            except StopAsyncIteration:
                self._batches = None
                self._epoch += 1
                continue
            return (x,) if y is None else (x, y) if sw is None else (x, y, sw)


class BatchServer:
    """A TCP server streaming one source as wire frames to every client that connects.

    Made by :func:`serve_batches`; use it as an async context manager. While it
    is open, :attr:`host` and :attr:`port` are the bound address.

    A re-iterable source (arrays, a list, a dataset, a re-iterable object) gives
    every connection its own stream: ``epochs`` passes from the start, numbered
    from 0, then END. A one-shot source (a generator or iterator) is one stream
    shared by all connections, one connection at a time: a client that connects
    later (or reconnects) continues where the last one stopped, the numbering
    continuing too. Frames a dropped client never read from its socket buffers
    are lost to it, which its sequence check reports as a gap.

    An error raised by the source propagates out of the ``async with`` block.
    """

    def __init__(self, make_data: Any, one_shot: bool, options: dict[str, Any]) -> None:
        self._make_data = make_data
        self._one_shot = one_shot
        self._host: str = options["host"]
        self._port: int = options["port"]
        self._epochs: int | None = options["epochs"]
        self._max_frame_bytes: int = options["max_frame_bytes"]
        self._stats = ServerStatistics()
        self._tg: TaskGroup | None = None
        self._listener: Any = None
        self._shared: tuple[Any, _Feed, anyio.Lock] | None = None

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the one the OS picked when created with ``port=0``)."""
        return self._port

    def statistics(self) -> ServerStatistics:
        """A snapshot of connections, frames and bytes sent, and sends in progress."""
        return ServerStatistics(**vars(self._stats))

    async def __aenter__(self) -> BatchServer:
        self._listener = await anyio.create_tcp_listener(
            local_host=self._host, local_port=self._port
        )
        sock = self._listener.listeners[0]
        self._host = sock.extra(SocketAttribute.local_address)[0]
        self._port = sock.extra(SocketAttribute.local_port)
        try:
            if self._one_shot:
                data = await self._make_data().__aenter__()
                self._shared = (data, _Feed(data, None), anyio.Lock())
            self._tg = anyio.create_task_group()
            await self._tg.__aenter__()
            self._tg.start_soon(self._listener.serve, self._handle, self._tg)
        except BaseException:
            await self._close_rest()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                with original_errors():
                    await tg.__aexit__(None, None, None)
        finally:
            await self._close_rest()

    async def _close_rest(self) -> None:
        shared, self._shared = self._shared, None
        try:
            if shared is not None:
                # Not under a shield of ours: the iterator's own task group must be the
                # innermost scope when it exits (it shields its own cleanup).
                await shared[0].__aexit__(None, None, None)
        finally:
            listener, self._listener = self._listener, None
            if listener is not None:
                with anyio.CancelScope(shield=True):
                    await listener.aclose()

    async def _handle(self, stream: SocketStream) -> None:
        self._stats.connections += 1
        async with stream:
            try:
                if self._shared is not None:
                    async with self._shared[2]:
                        await self._stream_to(stream, self._shared[1])
                else:
                    async with self._make_data() as data:
                        await self._stream_to(stream, _Feed(data, self._epochs))
            except _ClientGone as gone:
                logger.info("aiofit batch server: client left (%s)", gone.__cause__)

    async def _stream_to(self, stream: SocketStream, feed: _Feed) -> None:
        while True:
            if feed.pending is None:
                arrays = await feed.next()
                if arrays is None:
                    await self._send(stream, encode_end(feed.sequence))
                    return
                feed.pending = encode_batch(
                    feed.sequence, arrays, max_frame_bytes=self._max_frame_bytes
                )
            await self._send(stream, feed.pending)
            feed.pending = None
            feed.sequence += 1

    async def _send(self, stream: SocketStream, frame: bytes) -> None:
        self._stats.sending += 1
        try:
            await stream.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise _ClientGone from exc
        finally:
            self._stats.sending -= 1
        self._stats.frames_sent += 1
        self._stats.bytes_sent += len(frame)


class _ClientGone(Exception):
    pass


def serve_batches(
    source: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    epochs: int | None = 1,
    max_queue_size: int = 2,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> BatchServer:
    """Serve ``source`` as a TCP batch stream to every client that connects.

    ``source`` is anything ``fit`` accepts (arrays with ``y``/``sample_weight``
    and ``batch_size``, an async or sync iterable of batches, a list of batches,
    an indexable dataset); batches are checked as ``fit`` checks them, and a
    batch may hold ``x`` alone.

    Args:
        source: the data (see above).
        y: targets, with array ``source`` only.
        sample_weight: per-sample weights, with array ``source`` only.
        host: the address to bind (an IP address; loopback by default).
        port: the port to bind; 0 lets the OS pick one (read it from ``.port``).
        batch_size: samples per batch for arrays (default 32).
        shuffle: reshuffle arrays/datasets at each pass, from ``seed``.
        seed: seeds the shuffling, so every connection (and a restarted server)
            sees the same order: what lets a reconnecting client resume.
        epochs: passes per connection before END; None streams forever. A one-shot
            source is streamed once, whatever this says.
        max_queue_size: batches the server reads ahead of the socket.
        max_frame_bytes: refuse to send larger frames (a reader's default limit).

    Returns:
        A :class:`BatchServer`, to be entered with ``async with``.

    Example:
        >>> async with serve_batches(x, y, batch_size=64) as server:  # doctest: +SKIP
        ...     await model.fit(from_tcp(server.host, server.port))
    """
    from ..engine.epoch_iterator import EpochIterator  # the engine imports this package
    from .arrays import ArraySource

    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)):
        raise TypeError(f"epochs must be an int or None. Received: epochs={epochs!r}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be at least 1, or None. Received: epochs={epochs}")

    if isinstance(source, np.ndarray) or (y is not None and isinstance(source, list | tuple)):
        # Checked once here, not again for every connection (a full pass over x).
        source = ArraySource(source, y, sample_weight, batch_size=batch_size or 32,
                             shuffle=shuffle)  # fmt: skip
        y = sample_weight = None

    def make_data() -> Any:
        return EpochIterator(
            source, y, sample_weight, batch_size=batch_size, shuffle=shuffle,
            max_queue_size=max_queue_size, rng=np.random.default_rng(seed), role="predict",
        )  # fmt: skip

    make_data()  # validates the arguments now rather than at the first connection
    one_shot = hasattr(source, "__anext__") or hasattr(source, "__next__")
    options = {"host": host, "port": port, "epochs": epochs, "max_frame_bytes": max_frame_bytes}
    return BatchServer(make_data, one_shot, options)
