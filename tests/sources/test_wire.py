"""The batch stream wire format: round trips, numpy interop, and a fuzzed decoder."""

from __future__ import annotations

import io
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofit import DataError
from aiofit.sources import ProtocolError
from aiofit.sources.wire import (
    HEADER_SIZE,
    FrameDecoder,
    decode_frames,
    encode_batch,
    encode_end,
)

DTYPES = [
    "?", "i1", "i2", "<i4", ">i4", "<i8", "u1", "<u2", ">u4", "u8",
    "<f2", "<f4", ">f4", "<f8", ">f8", "<c8", ">c16",
]  # fmt: skip
SHAPES = [(5,), (5, 3), (5, 2, 3), (0,), (0, 4), (1, 4, 1)]


def frame_by_hand(seq: int, arrays: list[np.ndarray]) -> bytes:
    """A frame built from the written spec with ``np.save``, independently of the encoder."""
    payload = b""
    for arr in arrays:
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        payload += buf.getvalue()
    head = struct.pack("<4sBBBBQQ", b"AIOF", 1, 0, len(arrays), 0, seq, len(payload))
    return head + payload


def sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape) * 50
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.normal(size=shape)
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_dtype_and_shape_round_trips_exactly(dtype: str, shape: tuple[int, ...]) -> None:
    x = sample(dtype, shape)
    y = np.arange(shape[0], dtype="i8")
    sw = np.linspace(0, 1, shape[0], dtype="f4")
    for arrays in ([x], [x, y], [x, y, sw]):
        (frame,) = decode_frames(encode_batch(7, arrays))
        assert frame.sequence == 7
        assert not frame.end
        assert len(frame.arrays) == len(arrays)
        for got, want in zip(frame.arrays, arrays, strict=True):
            assert got.dtype == want.dtype
            assert got.shape == want.shape
            assert got.tobytes() == want.tobytes()


def test_non_contiguous_and_fortran_arrays_keep_their_values() -> None:
    base = np.arange(60, dtype="f8").reshape(6, 10)
    for arr in (base[:, ::3], np.asfortranarray(base), base.T[:4]):
        (frame,) = decode_frames(encode_batch(0, [arr]))
        np.testing.assert_array_equal(frame.arrays[0], arr)


def test_a_frame_written_from_the_spec_with_np_save_decodes() -> None:
    x = np.asfortranarray(sample(">f8", (4, 3)))  # numpy writes fortran_order: True
    y = np.array([1, 0, 2, 1], dtype="<i2")
    end = struct.pack("<4sBBBBQQ", b"AIOF", 1, 1, 0, 0, 4, 0)
    frames = decode_frames(frame_by_hand(3, [x, y]) + end)
    assert [f.sequence for f in frames] == [3, 4]
    np.testing.assert_array_equal(frames[0].arrays[0], x)
    np.testing.assert_array_equal(frames[0].arrays[1], y)
    assert frames[1].end
    assert frames[1].arrays == ()


def test_the_encoder_output_reads_back_with_np_load() -> None:
    x, y = sample("<f4", (3, 2)), np.array([5, 6, 7])
    data = encode_batch(9, [x, y])
    magic, version, flags, count, reserved, seq, length = struct.unpack("<4sBBBBQQ", data[:24])
    assert (magic, version, flags, count, reserved, seq) == (b"AIOF", 1, 0, 2, 0, 9)
    assert length == len(data) - 24
    payload = io.BytesIO(data[24:])
    np.testing.assert_array_equal(np.load(payload, allow_pickle=False), x)
    np.testing.assert_array_equal(np.load(payload, allow_pickle=False), y)
    assert payload.read() == b""
    assert encode_end(4) == struct.pack("<4sBBBBQQ", b"AIOF", 1, 1, 0, 0, 4, 0)


def test_decoded_arrays_are_writable_and_frames_do_not_share_memory() -> None:
    data = encode_batch(0, [np.zeros((2, 2))]) + encode_batch(1, [np.zeros((2, 2))])
    first, second = decode_frames(data)
    first.arrays[0][0, 0] = 5.0
    assert second.arrays[0][0, 0] == 0.0


def test_byte_at_a_time_feeding_gives_the_same_frames() -> None:
    data = encode_batch(0, [sample("<f4", (3, 2)), np.arange(3)]) + encode_end(1)
    decoder = FrameDecoder()
    for i in range(len(data)):
        assert 1 <= decoder.bytes_needed <= len(data)
        decoder.feed(data[i : i + 1])
    first, end = decoder.next_frame(), decoder.next_frame()
    assert first is not None
    assert end is not None
    assert (first.sequence, end.sequence, end.end) == (0, 1, True)
    assert decoder.next_frame() is None


def receive_into(decoder: FrameDecoder, data: bytes, step: int) -> list[memoryview]:
    """Fill the decoder the way a socket does (``recv_into``), ``step`` bytes at most."""
    views, pos = [], 0
    while pos < len(data):
        view = decoder.get_buffer()
        assert len(view) == decoder.bytes_needed
        take = min(step, len(view), len(data) - pos)
        view[:take] = data[pos : pos + take]
        decoder.advance(take)
        views.append(view)
        pos += take
    return views


@pytest.mark.parametrize("step", [1, 7, 100, 10**6])
def test_receiving_into_the_buffer_gives_the_frames_feed_gives(step: int) -> None:
    arrays = [sample(">f8", (5, 3)), np.arange(5, dtype="<i2"), sample("<c8", (5,))]
    data = encode_batch(0, arrays) + encode_batch(1, arrays[:1]) + encode_end(2)
    decoder = FrameDecoder()
    receive_into(decoder, data, step)
    first, second, end = (decoder.next_frame() for _ in range(3))
    assert first is not None
    assert second is not None
    assert end is not None
    for got, want in zip(first.arrays, arrays, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(second.arrays[0], arrays[0])
    assert (end.sequence, end.end, decoder.next_frame()) == (2, True, None)


def test_a_payload_is_received_into_the_arrays_own_memory() -> None:
    x = sample("<f4", (4, 3))
    decoder = FrameDecoder()
    views = receive_into(decoder, encode_batch(0, [x]), step=10**6)
    header_view, payload_view = views
    assert len(header_view) == HEADER_SIZE
    frame = decoder.next_frame()
    assert frame is not None
    # zero copy: the array is the memory the socket wrote into
    assert np.shares_memory(frame.arrays[0], np.frombuffer(payload_view, np.uint8))
    np.testing.assert_array_equal(frame.arrays[0], x)


def test_advance_checks_its_count_and_a_broken_decoder_stays_broken() -> None:
    decoder = FrameDecoder()
    for bad in (0, -1, HEADER_SIZE + 1):
        match = f"takes 1 to bytes_needed=24 bytes. Received: {bad}"
        with pytest.raises(ValueError, match=match):
            decoder.advance(bad)
    view = decoder.get_buffer()
    view[:] = b"\x00" * HEADER_SIZE
    with pytest.raises(ProtocolError, match="bad magic") as first:
        decoder.advance(HEADER_SIZE)
    for call in (decoder.get_buffer, lambda: decoder.advance(1), lambda: decoder.feed(b"")):
        with pytest.raises(ProtocolError) as again:
            call()
        assert again.value is first.value


# -- bad input -----------------------------------------------------------------------


def header(seq: int = 7, *, magic: bytes = b"AIOF", version: int = 1, flags: int = 0,
           count: int = 1, reserved: int = 0, length: int = 0) -> bytes:  # fmt: skip
    return struct.pack("<4sBBBBQQ", magic, version, flags, count, reserved, seq, length)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (header(magic=b"HTTP"), r"the first frame: bad magic b'HTTP'"),
        (header(version=2), r"frame 7: unknown wire format version 2.*Received: version=2"),
        (header(flags=0x04), r"frame 7: unknown flag bits.*flags=0x04"),
        (header(reserved=1), r"frame 7: .*reserved=0x01"),
        (header(count=0, length=10), r"frame 7: a batch frame holds 1 to 3 arrays.*count=0"),
        (header(count=4, length=10), r"frame 7: .*Received: array count=4"),
        (header(flags=1, count=1), r"frame 7: an END frame carries no arrays"),
        (header(length=2**63), r"frame 7: payload length 9223372036854775808 exceeds"),
    ],
)
def test_a_bad_header_is_refused_before_its_payload(data: bytes, match: str) -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    with pytest.raises(ProtocolError, match=match):
        decoder.feed(data)
    assert decoder.buffered <= HEADER_SIZE  # nothing was set aside for the claimed payload
    with pytest.raises(ProtocolError, match=match):  # broken for good
        decoder.feed(encode_end(0))


def test_a_huge_claimed_length_allocates_nothing() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="exceeds max_frame_bytes=67108864"):
            FrameDecoder().feed(header(length=2**40))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_the_error_names_the_frame_after_the_last_good_one() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_batch(41, [np.zeros(2)]))
    with pytest.raises(ProtocolError, match="the frame after sequence number 41: bad magic"):
        decoder.feed(b"\x00" * HEADER_SIZE)


def object_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return buf.getvalue()


def with_payload(payload: bytes, count: int = 1, seq: int = 7) -> bytes:
    return header(seq, count=count, length=len(payload)) + payload


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (with_payload(object_npy()), r"frame 7, array 0: object arrays are not allowed"),
        (with_payload(npy(np.zeros(3, dtype="i4,f4"))), r"frame 7, array 0: only bool"),
        (with_payload(npy(np.array(["ab", "c"]))), r"frame 7, array 0: only bool.*<U2"),
        (with_payload(npy(np.float32(3.0))), r"frame 7, array 0: a scalar has no batch"),
        (
            with_payload(npy(np.zeros((4, 2))) + npy(np.zeros(3)), count=2),
            r"frame 7: the arrays of a batch must have the same length.*\[4, 3\]",
        ),
        (with_payload(npy(np.zeros(3)) + b"xx"), r"frame 7: 2 bytes left over after 1 arrays"),
        (with_payload(npy(np.zeros(3))[:-8]), r"frame 7, array 0: the .npy header claims 24"),
        (with_payload(b"NOTNUMPYATALL"), r"frame 7, array 0: not a .npy record"),
        (with_payload(npy(np.zeros(3)), count=2), r"frame 7, array 1: not a .npy record"),
        (
            with_payload(npy(np.zeros(3)).replace(b"'descr'", b"'dexcr'")),
            r"frame 7, array 0: malformed .npy header",
        ),
    ],
)
def test_a_bad_payload_raises_a_protocol_error_naming_the_frame(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_frames(data)


def test_a_truncated_frame_is_reported_at_the_end_of_input() -> None:
    data = encode_batch(3, [np.zeros((4, 4))])
    size = len(npy(np.zeros((4, 4))))  # the payload is one .npy file
    decoder = FrameDecoder()
    decoder.feed(data[:-5])
    assert decoder.next_frame() is None
    assert decoder.mid_frame
    with pytest.raises(ProtocolError, match=f"frame 3: truncated .* {size - 5} of the {size} pay"):
        decoder.end_of_input()


def test_protocol_errors_are_data_errors() -> None:
    assert issubclass(ProtocolError, DataError)
    assert issubclass(ProtocolError, ValueError)


@pytest.mark.parametrize(
    ("arrays", "error", "match"),
    [
        ([np.array([None, 1])], DataError, "object arrays are not allowed"),
        ([np.zeros(2)] * 4, DataError, "1 to 3 arrays.*Received: 4 arrays"),
        ([np.zeros(2), np.zeros(3)], DataError, r"same length.*\[2, 3\]"),
        ([np.zeros((1000, 100))], ValueError, "more than max_frame_bytes=1000"),
    ],
)
def test_the_encoder_refuses_what_a_reader_would_refuse(
    arrays: list[np.ndarray], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        encode_batch(0, arrays, max_frame_bytes=1000)


def test_the_encoder_refuses_a_bad_sequence_number() -> None:
    with pytest.raises(ValueError, match=r"Received: sequence=-1"):
        encode_batch(-1, [np.zeros(2)])
    with pytest.raises(ValueError, match=r"Received: sequence=18446744073709551616"):
        encode_end(2**64)


# -- fuzzing -------------------------------------------------------------------------

CAP = 4096


def feed_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[object]:
    """Feed ``data`` cut at ``cuts``; check the memory bound after every piece."""
    frames: list[object] = []
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, stop in zip(bounds, bounds[1:], strict=False):
        decoder.feed(data[start:stop])
        assert decoder.buffered <= HEADER_SIZE + CAP
        assert 1 <= decoder.bytes_needed <= HEADER_SIZE + CAP
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    return frames


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=8))
def test_random_bytes_raise_protocol_error_or_wait(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_frame_bytes=CAP)
    try:
        feed_in_chunks(decoder, data, cuts)
        decoder.end_of_input()
    except ProtocolError:
        pass


def valid_stream() -> bytes:
    return (
        encode_batch(0, [sample("<f4", (3, 4)), np.arange(3)])
        + encode_batch(1, [sample(">i2", (2, 2)), np.arange(2), np.ones(2, "f4")])
        + encode_end(2)
    )


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(0, 10_000),
    value=st.integers(0, 255),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
)
def test_mutated_frames_raise_protocol_error_or_decode(
    position: int, value: int, cuts: list[int]
) -> None:
    data = bytearray(valid_stream())
    data[position % len(data)] = value
    decoder = FrameDecoder(max_frame_bytes=CAP)
    try:
        frames = feed_in_chunks(decoder, bytes(data), cuts)
        decoder.end_of_input()
    except ProtocolError:
        return
    assert all(hasattr(f, "arrays") for f in frames)


@settings(max_examples=200, deadline=None)
@given(stop=st.integers(1, 10_000), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_a_truncated_stream_never_yields_a_partial_frame(stop: int, cuts: list[int]) -> None:
    data = valid_stream()
    stop %= len(data)
    decoder = FrameDecoder(max_frame_bytes=CAP)
    frames = feed_in_chunks(decoder, data[:stop], cuts)
    whole = decode_frames(data)
    assert len(frames) < len(whole)
    for got, want in zip(frames, whole, strict=False):
        assert got.sequence == want.sequence  # type: ignore[attr-defined]
    if decoder.mid_frame:
        with pytest.raises(ProtocolError, match="truncated frame"):
            decoder.end_of_input()
