"""The aiofit batch stream wire format: frames of ``.npy`` arrays (pure, no I/O).

## Wire format (version 1)

A stream is a sequence of *frames* sent one after another over a byte stream
(a TCP connection). Each frame is a fixed 24-byte header followed by a payload.
All header integers are unsigned, **little-endian**.

| offset | size | field          | value                                                  |
|-------:|-----:|----------------|--------------------------------------------------------|
| 0      | 4    | magic          | the ASCII bytes `AIOF` (`41 49 4F 46`)                 |
| 4      | 1    | version        | `1`                                                    |
| 5      | 1    | flags          | bit 0 (`0x01`): END, the end of the stream; others `0` |
| 6      | 1    | array count    | `1`-`3` in a batch frame (x, y, sample_weight); END: `0` |
| 7      | 1    | reserved       | `0`                                                    |
| 8      | 8    | sequence number| `0` for the first frame, then `+1` for every frame     |
| 16     | 8    | payload length | bytes that follow the header (`0` for END)             |

The payload of a batch frame is exactly *array count* arrays, each a complete
[`.npy` file](https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html)
(format version 1.0 or 2.0), back to back, in the order `x`, `y`, `sample_weight`;
together they fill the payload length exactly. Each `.npy` record is the magic
`\\x93NUMPY`, the format version (2 bytes), the header length (`uint16` LE for 1.0,
`uint32` LE for 2.0), then an ASCII Python-literal dict such as
`{'descr': '<f4', 'fortran_order': False, 'shape': (256, 784), }` padded with
spaces to a multiple of 64 bytes and ended by `\\n`, then the raw array data.

Rules a reader enforces (a violation is a :class:`aiofit.sources.ProtocolError`,
a subclass of :class:`aiofit.DataError`, naming the sequence number and the
problem; the reader then closes the connection):

- the magic, version, flags, array count and reserved byte are as above, checked
  before anything else is read;
- the payload length is at most the reader's ``max_frame_bytes`` (64 MiB by
  default), checked *before* the payload is read or any memory is set aside for it;
- dtypes are bool, signed or unsigned integers, floats or complex numbers, either
  byte order: never object arrays, structured or void dtypes (there is no pickle
  in this format: it is read with ``allow_pickle=False``);
- every array has at least one dimension, and all arrays of a frame have the same
  length along their first axis (the number of samples in the batch);
- the `.npy` records fill the payload exactly.

A finite stream ends with an END frame whose sequence number is the number of
batch frames sent before it. A connection that closes without one was dropped
(a truncated stream), which a client can tell apart from a clean end.
Sequence numbers let a client that reconnects skip the frames it already has.

A producer sends frames only as fast as the connection accepts them; the reader
reads a frame only when its consumer wants the next batch, so TCP flow control
carries backpressure back to the producer.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._exceptions import ProtocolError
from ._npy import check_arrays, npy_header, read_arrays

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "Frame",
    "FrameDecoder",
    "decode_frames",
    "encode_batch",
    "encode_end",
]

MAGIC = b"AIOF"
VERSION = 1
FLAG_END = 0x01
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct("<4sBBBBQQ")
HEADER_SIZE = _HEADER.size


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        sequence: the frame's sequence number.
        arrays: ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``; empty for END.
        end: True for the end-of-stream frame.
    """

    sequence: int
    arrays: tuple[np.ndarray, ...]
    end: bool = False


def encode_batch(
    sequence: int,
    arrays: Sequence[np.ndarray],
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> bytes:
    """One batch frame holding ``arrays`` (1 to 3 of them, equally long).

    Args:
        sequence: the frame's sequence number (``0 <= sequence < 2**64``).
        arrays: ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``.
        max_frame_bytes: refuse to build a frame a default reader would reject.

    Raises:
        ValueError: a bad sequence number, or a payload over ``max_frame_bytes``.
        aiofit.DataError: the arrays cannot be sent (count, dtype, lengths).
    """
    _check_sequence(sequence)
    arrays = [np.ascontiguousarray(a) for a in arrays]
    check_arrays(arrays, f"frame {sequence}")
    parts: list[Any] = []  # bytes and uint8 views of the arrays: joined with one copy
    for arr in arrays:
        parts += [npy_header(arr.dtype, arr.shape), arr.reshape(-1).view(np.uint8)]
    length = sum(len(p) for p in parts)
    if length > max_frame_bytes:
        raise ValueError(
            f"frame {sequence}: the batch takes {length} bytes, more than "
            f"max_frame_bytes={max_frame_bytes}; send smaller batches or raise the limit "
            f"on both ends. Received: shapes {[a.shape for a in arrays]}"
        )
    head = _HEADER.pack(MAGIC, VERSION, 0, len(arrays), 0, sequence, length)
    return b"".join([head, *parts])


def encode_end(sequence: int) -> bytes:
    """The END frame; ``sequence`` is the number of batch frames sent before it."""
    _check_sequence(sequence)
    return _HEADER.pack(MAGIC, VERSION, FLAG_END, 0, 0, sequence, 0)


def decode_frames(data: bytes, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> list[Frame]:
    """Every frame in ``data``, which must hold whole frames only.

    Raises:
        ProtocolError: a malformed frame, or ``data`` ends inside a frame.
    """
    decoder = FrameDecoder(max_frame_bytes=max_frame_bytes)
    decoder.feed(data)
    decoder.end_of_input()
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


class FrameDecoder:
    """Turns bytes, fed in pieces of any size, into :class:`Frame` objects.

    Sans-I/O: the caller reads from its connection and calls :meth:`feed`, or
    receives straight into :meth:`get_buffer` and calls :meth:`advance` (no copy:
    the payload is received into the memory the frame's arrays view). To never
    read past the frame the consumer asked for, read at most :attr:`bytes_needed`
    bytes at a time (``get_buffer`` is exactly that long). The header is validated
    before the payload is awaited, and a payload buffer is allocated only once its
    length has passed the ``max_frame_bytes`` check, so memory held is at most
    ``HEADER_SIZE + max_frame_bytes`` plus decoded frames not yet taken.

    After a :class:`ProtocolError` the decoder is broken: every later call to
    :meth:`feed` raises the same error.

    Example:
        >>> decoder = FrameDecoder()
        >>> decoder.feed(encode_batch(0, [np.zeros((2, 3)), np.ones(2)]))
        >>> decoder.next_frame().sequence
        0
    """

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if isinstance(max_frame_bytes, bool) or not isinstance(max_frame_bytes, int):
            raise TypeError(f"max_frame_bytes must be an int. Received: {max_frame_bytes!r}")
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be positive. Received: {max_frame_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self.last_sequence: int | None = None
        self._header = bytearray(HEADER_SIZE)
        self._head_filled = 0
        self._payload: np.ndarray | None = None  # uint8, allocated once the header is checked
        self._filled = 0
        self._frame_header: tuple[int, int, int] | None = None  # sequence, flags, count
        self._ready: deque[Frame] = deque()
        self._error: ProtocolError | None = None

    @property
    def bytes_needed(self) -> int:
        """Bytes that complete the header or payload being read (always >= 1)."""
        if self._payload is None:
            return HEADER_SIZE - self._head_filled
        return len(self._payload) - self._filled

    @property
    def mid_frame(self) -> bool:
        """True when part of a frame has been fed but not all of it."""
        return self._head_filled > 0 or self._payload is not None

    @property
    def buffered(self) -> int:
        """Bytes held for the frame in progress (its header plus its payload buffer)."""
        return self._head_filled + (0 if self._payload is None else len(self._payload))

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Consume ``data``; complete frames become available from :meth:`next_frame`.

        Raises:
            ProtocolError: the bytes break the format (see the module docs).
        """
        if self._error is not None:
            raise self._error
        view = memoryview(data).cast("B")
        pos = 0
        while pos < len(view):
            buf = self.get_buffer()
            take = min(len(buf), len(view) - pos)
            buf[:take] = view[pos : pos + take]
            self.advance(take)
            pos += take

    def get_buffer(self) -> memoryview:
        """A writable view of the :attr:`bytes_needed` bytes that come next.

        The zero-copy twin of :meth:`feed` (like asyncio's ``BufferedProtocol``):
        receive straight into the view (``sock.recv_into(decoder.get_buffer())``),
        then report how many bytes arrived with :meth:`advance`. A payload is
        received into the memory its arrays will view, so it is never copied.

        Raises:
            ProtocolError: the decoder is broken by an earlier error.
        """
        if self._error is not None:
            raise self._error
        if self._payload is None:
            return memoryview(self._header)[self._head_filled :]
        return self._payload.data[self._filled :]

    def advance(self, n: int) -> None:
        """Declare that the first ``n`` bytes of :meth:`get_buffer`'s view were filled.

        Raises:
            ProtocolError: the bytes break the format (see the module docs).
            ValueError: ``n`` is not between 1 and :attr:`bytes_needed`.
        """
        if self._error is not None:
            raise self._error
        if not 0 < n <= self.bytes_needed:
            raise ValueError(
                f"advance() takes 1 to bytes_needed={self.bytes_needed} bytes. Received: {n}"
            )
        try:
            self._advance(n)
        except ProtocolError as exc:
            self._error = exc
            raise

    def next_frame(self) -> Frame | None:
        """The oldest complete frame not yet taken, or None."""
        return self._ready.popleft() if self._ready else None

    def end_of_input(self) -> None:
        """Declare that no more bytes will come.

        Raises:
            ProtocolError: the input stopped inside a frame (a truncated frame).
        """
        if not self.mid_frame:
            return
        if self._payload is None:
            what = f"{self._head_filled} of the {HEADER_SIZE} header bytes"
            seq = self._after()
        else:
            what = f"{self._filled} of the {len(self._payload)} payload bytes"
            seq = f"frame {self._frame_header[0] if self._frame_header else '?'}"
        self._error = ProtocolError(f"{seq}: truncated frame: the input ended after {what}")
        raise self._error

    # -- internals --------------------------------------------------------------

    def _after(self) -> str:
        if self.last_sequence is None:
            return "the first frame"
        return f"the frame after sequence number {self.last_sequence}"

    def _advance(self, n: int) -> None:
        if self._payload is None:
            self._head_filled += n
            if self._head_filled == HEADER_SIZE:
                self._start_frame()
            return
        self._filled += n
        if self._filled == len(self._payload):
            self._finish_frame()

    def _start_frame(self) -> None:
        magic, version, flags, count, reserved, seq, length = _HEADER.unpack(self._header)
        where = self._after()
        if magic != MAGIC:
            raise ProtocolError(
                f"{where}: bad magic {bytes(magic)!r}, expected {MAGIC!r} (not an aiofit "
                f"batch stream, or the stream is out of step). Received: header "
                f"{bytes(self._header).hex()}"
            )
        where = f"frame {seq}"
        if version != VERSION:
            raise ProtocolError(
                f"{where}: unknown wire format version {version}; this reader speaks "
                f"version {VERSION}. Received: version={version}"
            )
        _check_header_fields(where, flags, count, reserved, length, self.max_frame_bytes)
        self._head_filled = 0
        self._frame_header = (seq, flags, count)
        # Safe: length was checked against the cap. Not zero-filled: it is received into.
        self._payload = np.empty(length, dtype=np.uint8)
        self._filled = 0
        if length == 0:
            self._finish_frame()

    def _finish_frame(self) -> None:
        assert self._frame_header is not None
        assert self._payload is not None
        (seq, flags, count), payload = self._frame_header, self._payload
        self._frame_header, self._payload, self._filled = None, None, 0
        if flags & FLAG_END:
            frame = Frame(seq, (), end=True)
        else:
            frame = Frame(seq, read_arrays(payload, count, f"frame {seq}"))
        self.last_sequence = seq
        self._ready.append(frame)


def _check_header_fields(
    where: str, flags: int, count: int, reserved: int, length: int, cap: int
) -> None:
    if flags & ~FLAG_END or reserved:
        raise ProtocolError(
            f"{where}: unknown flag bits or a non-zero reserved byte. "
            f"Received: flags=0x{flags:02x}, reserved=0x{reserved:02x}"
        )
    if flags & FLAG_END:
        if count or length:
            raise ProtocolError(
                f"{where}: an END frame carries no arrays. "
                f"Received: array count={count}, payload length={length}"
            )
        return
    if not 1 <= count <= 3:
        raise ProtocolError(
            f"{where}: a batch frame holds 1 to 3 arrays (x, y, sample_weight). "
            f"Received: array count={count}"
        )
    if length > cap:
        raise ProtocolError(
            f"{where}: payload length {length} exceeds max_frame_bytes={cap}; the frame "
            f"is refused before reading it. Received: payload length={length}"
        )


def _check_sequence(sequence: int) -> None:
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence < 2**64:
        raise ValueError(f"sequence must be an int in [0, 2**64). Received: sequence={sequence!r}")
