"""TCP batch streams: :func:`serve_batches` on one end, :func:`from_tcp` on the other.

Frames follow :mod:`aiofit.sources.wire`; both ends run on anyio (asyncio, uvloop, trio).

Backpressure, end to end: the client reads a frame from its socket only when its
consumer asks for the next batch (``fit``'s bounded buffer asks only when it has
room), so unread frames wait in the kernel's socket buffers, TCP flow control
stops the server and the server's ``send`` blocks. Neither side's memory grows
with the stream: the server holds the batch it is sending (plus ``max_queue_size``
read ahead from its source), the client the frame it is reading.

Sequence numbers and reconnects: within one connection frames must be numbered
``n, n+1, n+2...``; anything else is a :class:`~aiofit.sources.ProtocolError`.
When a connection drops (closed without an END frame, or reset), a client made
with ``reconnect=True`` reconnects with capped exponential backoff. A restarted
server streams its source again from sequence 0 (a seeded, re-iterable source
replays the same batches), so the client skips the frames it already has (logged,
and counted in :meth:`TcpStream.statistics`) and resumes at the first it lacks. A
frame past the expected number is a gap: a ``ProtocolError`` naming the lost
sequence numbers. Nothing is silently lost or handed out twice.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np

from .._exceptions import ProtocolError
from ._one_shot import OneShotStream
from ._tcp_server import BatchServer, ServerStatistics, serve_batches
from .wire import DEFAULT_MAX_FRAME_BYTES, Frame, FrameDecoder

__all__ = [
    "BatchServer",
    "ServerStatistics",
    "StreamStatistics",
    "TcpStream",
    "from_tcp",
    "serve_batches",
]

logger = logging.getLogger(__name__)


@dataclass
class StreamStatistics:
    """What a :class:`TcpStream` has read so far.

    Attributes:
        frames: batch frames handed to the consumer.
        bytes: bytes read from sockets.
        connections: connections made (1 + reconnects).
        duplicates: frames skipped because they were already handed out.
    """

    frames: int = 0
    bytes: int = 0
    connections: int = 0
    duplicates: int = 0


@dataclass
class _Link:
    """One connection and where its numbering stands."""

    sock: socket.socket  # non-blocking, owned by the link
    decoder: FrameDecoder
    last: int | None = None
    skipped: list[int] = field(default_factory=list)


class TcpStream(OneShotStream):
    """An async iterator of batches read from a TCP batch stream (see :func:`from_tcp`).

    One-shot, like an async generator: iterating it again after the end yields
    nothing. It connects on the first ``anext`` and closes the connection at the
    END frame, on error, on cancellation, and on :meth:`aclose` (``fit`` calls it;
    or use ``async with``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        reconnect: bool,
        max_retries: int | None,
        backoff: tuple[float, float],
        max_frame_bytes: int,
    ) -> None:
        self.host, self.port = host, port
        self.reconnect = reconnect
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_frame_bytes = max_frame_bytes
        self._link: _Link | None = None
        self._expected: int | None = None  # the next sequence number to hand out
        self._failures = 0  # drops and failed connects since the last good frame
        self._done = False
        self._stats = StreamStatistics()

    def statistics(self) -> StreamStatistics:
        """A snapshot of frames and bytes read, connections made, duplicates skipped."""
        return StreamStatistics(**vars(self._stats))

    async def aclose(self) -> None:
        """Close the connection; later iteration yields nothing."""
        self._done = True
        link, self._link = self._link, None
        if link is not None:
            _close(link.sock)

    async def _next_batch(self) -> tuple[np.ndarray, ...] | None:
        frame = await self._next_frame()
        return None if frame is None else frame.arrays

    async def _next_frame(self) -> Frame | None:
        """The next frame to hand out, or None at END; reconnects as configured."""
        while True:
            link = self._link or await self._connect()
            try:
                frame = await self._read(link)
            except _Dropped as drop:
                await self._drop(link, drop)
                continue
            if self._accept(link, frame):
                self._failures = 0
                return None if frame.end else frame

    async def _read(self, link: _Link) -> Frame:
        # Straight from the socket into the frame's payload (the arrays' own memory),
        # reading at most the frame asked for; the loop waits only when the kernel's
        # buffer is empty. A transport would copy every chunk into a bytes object.
        decoder, sock = link.decoder, link.sock
        waited = False
        while (frame := decoder.next_frame()) is None:
            try:
                received = sock.recv_into(decoder.get_buffer())
            except BlockingIOError:
                await anyio.wait_readable(sock)
                waited = True
                continue
            except OSError as exc:
                raise _Dropped(self._drop_message(decoder)) from exc
            if not received:
                raise _Dropped(self._drop_message(decoder))
            self._stats.bytes += received
            decoder.advance(received)
        if not waited:
            await anyio.lowlevel.checkpoint()  # a stream that never blocks still yields
        return frame

    def _drop_message(self, decoder: FrameDecoder) -> str:
        where = f"the connection to {self.host}:{self.port}"
        if decoder.mid_frame:
            return f"truncated frame: {where} closed after {decoder.buffered} bytes of a frame"
        last = self._expected - 1 if self._expected else None
        return (
            f"{where} closed without an end-of-stream frame after sequence number {last} "
            f"(the stream was dropped)"
        )

    def _accept(self, link: _Link, frame: Frame) -> bool:
        """Check the numbering; False for a duplicate to skip."""
        seq = frame.sequence
        if link.last is not None and seq != link.last + 1:
            kind = "a duplicate" if seq <= link.last else "a gap"
            raise ProtocolError(
                f"frame {seq}: {kind} in the numbering within one connection; expected "
                f"sequence number {link.last + 1}. Received: sequence number {seq}"
            )
        link.last = seq
        expected = seq if self._expected is None else self._expected
        if seq > expected:
            raise ProtocolError(
                f"frame {seq}: frames {expected} to {seq - 1} were lost (the server did not "
                f"replay them after the reconnect). Received: sequence number {seq}, "
                f"expected {expected}"
            )
        if seq < expected:
            if frame.end:
                raise ProtocolError(
                    f"frame {seq}: the stream ended at sequence number {seq}, but frames up "
                    f"to {expected - 1} were already received. Received: END at {seq}"
                )
            self._stats.duplicates += 1
            link.skipped.append(seq)
            return False
        if link.skipped:
            logger.info("skipped frames %d-%d, already received", link.skipped[0], seq - 1)
            link.skipped.clear()
        self._expected = seq + (0 if frame.end else 1)
        self._stats.frames += 0 if frame.end else 1
        return True

    async def _connect(self) -> _Link:
        while True:
            try:
                sock = await _open_socket(self.host, self.port)
            except OSError as exc:
                await self._backoff(
                    f"cannot connect to {self.host}:{self.port}: {exc}", exc, ConnectionError
                )
                continue
            self._stats.connections += 1
            self._link = _Link(sock, FrameDecoder(max_frame_bytes=self.max_frame_bytes))
            return self._link

    async def _drop(self, link: _Link, drop: _Dropped) -> None:
        self._link = None
        _close(link.sock)
        await self._backoff(str(drop), drop.__cause__, ProtocolError)

    async def _backoff(
        self, why: str, cause: BaseException | None, error: type[Exception]
    ) -> None:
        """Sleep before the next attempt, or raise ``error`` when out of attempts."""
        self._failures += 1
        retries = self.max_retries if self.max_retries is not None else math.inf
        if not self.reconnect or self._failures > retries:
            gave_up = f" (gave up after {self._failures - 1} retries)" if self.reconnect else ""
            received = f"Received: host={self.host!r}, port={self.port}"
            raise error(f"{why}{gave_up}. {received}") from cause
        base, cap = self.backoff
        delay = min(cap, base * 2 ** (self._failures - 1))
        logger.warning("%s; reconnecting in %.2f s (attempt %d)", why, delay, self._failures)
        await anyio.sleep(delay)


class _Dropped(Exception):
    """The connection ended or broke; the message says where in the stream."""


async def _open_socket(host: str, port: int) -> socket.socket:
    """A non-blocking socket connected to the first address of ``host`` that accepts."""
    error: OSError = OSError(f"no address found for {host!r}")
    for family, kind, proto, _, address in await anyio.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await _connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error


async def _connect(sock: socket.socket, address: tuple[Any, ...]) -> None:
    try:
        sock.connect(address)
    except BlockingIOError:
        await anyio.wait_writable(sock)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code)) from None


def _close(sock: socket.socket) -> None:
    anyio.notify_closing(sock)  # wakes (and unregisters) any task waiting on it
    sock.close()


def from_tcp(
    host: str,
    port: int,
    *,
    reconnect: bool = False,
    max_retries: int | None = 10,
    backoff: tuple[float, float] = (0.1, 5.0),
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> TcpStream:
    """Batches streamed by a TCP batch server (:func:`serve_batches` or any producer
    speaking :mod:`aiofit.sources.wire`), as a source for ``fit``.

    Each batch is read from the socket only when the consumer asks for it, so the
    engine's bounded buffer throttles the server through TCP flow control. The
    stream is one-shot (like an async generator): ``fit`` with ``epochs > 1`` needs
    ``steps_per_epoch`` and a server that streams that many epochs.

    Args:
        host: the server's address.
        port: the server's port.
        reconnect: after a dropped connection (or a refused first connect),
            reconnect with capped exponential backoff and resume after the last
            frame received (see the module docs). Off by default: a finite stream
            that drops is an error.
        max_retries: consecutive failed attempts allowed (reset by every frame
            received); None retries forever.
        backoff: ``(initial, cap)`` seconds: waits go initial, 2x, 4x... up to cap.
        max_frame_bytes: refuse frames whose payload is larger, before reading them.

    Raises (while iterating):
        ProtocolError: a malformed frame, a gap in the numbering, or a dropped
            stream when ``reconnect`` is off (or out of retries).
        ConnectionError: the server cannot be reached.

    Example:
        >>> history = await model.fit(from_tcp("127.0.0.1", 5555))  # doctest: +SKIP
    """
    for name, value in (("host", host), ("port", port)):
        kind = str if name == "host" else int
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TypeError(f"{name} must be a {kind.__name__}. Received: {name}={value!r}")
    if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
        raise ValueError(
            f"max_retries must be a non-negative int or None. Received: {max_retries!r}"
        )
    if len(backoff) != 2 or not 0 < backoff[0] <= backoff[1]:
        raise ValueError(
            f"backoff must be (initial, cap) seconds with 0 < initial <= cap. "
            f"Received: backoff={backoff!r}"
        )
    FrameDecoder(max_frame_bytes=max_frame_bytes)  # checks the limit
    return TcpStream(
        host, port, reconnect=reconnect, max_retries=max_retries, backoff=(backoff[0], backoff[1]),
        max_frame_bytes=max_frame_bytes,
    )  # fmt: skip
