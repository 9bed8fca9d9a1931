"""TCP batch streams over real sockets on 127.0.0.1, on asyncio, uvloop and trio."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import aiofit
from aiofit import layers
from aiofit.callbacks import Callback
from aiofit.sources import ProtocolError, from_tcp, serve_batches
from aiofit.sources.wire import encode_batch, encode_end

pytestmark = pytest.mark.anyio


def make_model() -> aiofit.Sequential:
    model = aiofit.Sequential(
        [
            layers.Input(shape=(6,)),
            layers.Dense(8, activation="relu"),
            layers.Dropout(0.25),  # draws from the model's rng at every step
            layers.Dense(3, activation="softmax"),
        ],
        seed=3,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_data(n: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    sw = rng.uniform(0.5, 2.0, size=n).astype("float32")
    return x, y, sw


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [batch async for batch in stream]


class CountingModel:
    """A Trainable that only counts the samples it is given."""

    def __init__(self) -> None:
        self.stop_training = False
        self.seen = 0

    @property
    def metrics_names(self) -> list[str]:
        return ["loss"]

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        self.seen += len(x)
        return {"loss": 0.0}

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        return {"loss": 0.0}

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def get_weights(self) -> list[np.ndarray]:
        return []

    def set_weights(self, weights: list[np.ndarray]) -> None:
        pass


# -- end to end ----------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
async def test_fit_over_tcp_equals_fit_from_memory_bit_for_bit(weighted: bool) -> None:
    x, y, sw = make_data()
    weights = sw if weighted else None
    ref, model = make_model(), make_model()
    want = await ref.fit(
        x, y, sample_weight=weights, batch_size=16, epochs=2, shuffle=False, verbose=0
    )
    async with serve_batches(x, y, weights, batch_size=16, epochs=2) as server:
        got = await model.fit(
            from_tcp(server.host, server.port), steps_per_epoch=6, epochs=2, verbose=0
        )
    assert got.history == want.history
    for a, b in zip(model.get_weights(), ref.get_weights(), strict=True):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)


async def test_batches_arrive_in_order_as_sent() -> None:
    x, y, sw = make_data(40)
    async with serve_batches(x, y, sw, batch_size=16) as server:
        stream = from_tcp(server.host, server.port)
        batches = await collect(stream)
        assert await collect(stream) == []  # one-shot, like an async generator
    assert [len(b[0]) for b in batches] == [16, 16, 8]
    for got, arr in zip(zip(*batches, strict=True), (x, y, sw), strict=True):
        np.testing.assert_array_equal(np.concatenate(got), arr)
    assert stream.statistics().frames == 3
    assert server.statistics().frames_sent == 4  # END included


async def test_each_client_of_a_reiterable_source_gets_the_whole_stream() -> None:
    x, y, _ = make_data(64)
    results: list[list[Any]] = [[], []]
    async with serve_batches(x, y, batch_size=16, shuffle=True, seed=5) as server:

        async def read(i: int) -> None:
            results[i] = await collect(from_tcp(server.host, server.port))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read, 0)
            tg.start_soon(read, 1)
    assert server.statistics().connections == 2
    xs = [np.concatenate([b[0] for b in r]) for r in results]
    np.testing.assert_array_equal(xs[0], xs[1])  # the same seeded order for both
    assert not np.array_equal(xs[0], x)  # shuffled
    np.testing.assert_array_equal(np.sort(xs[0], axis=0), np.sort(x, axis=0))


async def test_arrays_are_checked_once_not_once_per_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A full pass over x (isfinite...) per client would delay every client's first frame.
    from aiofit.sources import arrays

    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return check_arrays(*args, **kwargs)

    check_arrays = arrays.check_arrays
    monkeypatch.setattr(arrays, "check_arrays", counted)
    x, y, _ = make_data(32)
    async with serve_batches(x, y, batch_size=8) as server:
        for _ in range(3):
            got = await collect(from_tcp(server.host, server.port))
            np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), x)
    assert len(calls) == 1
    x[3, 2] = np.nan  # and a bad array is still refused up front
    with pytest.raises(aiofit.DataError, match="non-finite|NaN"):
        serve_batches(x, y, batch_size=8)


async def test_a_generator_source_is_streamed_once_and_closed() -> None:
    closed = []

    async def batches() -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        try:
            for i in range(5):
                yield np.full((2, 3), i, dtype="f4"), np.zeros(2)
        finally:
            closed.append(True)

    async with serve_batches(batches()) as server:
        first = await collect(from_tcp(server.host, server.port))
        second = await collect(from_tcp(server.host, server.port))
    assert [int(b[0][0, 0]) for b in first] == [0, 1, 2, 3, 4]
    assert second == []  # the shared one-shot stream has ended: END straight away
    assert closed == [True]


async def test_a_source_error_propagates_out_of_the_server() -> None:
    async def batches() -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        yield np.zeros((2, 3)), np.zeros(2)
        raise RuntimeError("disk on fire")

    async def serve_and_read() -> None:
        async with serve_batches(batches()) as server:
            stream = from_tcp(server.host, server.port)
            with pytest.raises(ProtocolError, match="without an end-of-stream frame"):
                await collect(stream)
            await anyio.sleep_forever()  # cancelled by the server's error

    with pytest.raises(RuntimeError, match="disk on fire"):
        await serve_and_read()


# -- backpressure --------------------------------------------------------------------


def socket_buffer_bytes() -> int:
    """The most the kernel may buffer on one loopback connection (send + receive side)."""
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        path = Path("/proc/sys/net/ipv4") / name
        total += int(path.read_text().split()[2]) if path.exists() else 16 << 20
    return total


async def test_a_slow_consumer_stalls_the_server_through_tcp_flow_control() -> None:
    produced = 0
    frame = np.ones((256, 784), dtype="float32")

    async def endless() -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        nonlocal produced
        while True:
            produced += 1
            yield frame, np.zeros(256)

    async with serve_batches(endless(), max_queue_size=2) as server:

        class WaitForStall(Callback):
            async def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if batch != 3:
                    return
                # The consumer stops here with the engine's buffer full. Wait until the
                # server has sent nothing for a while and sits blocked in send().
                quiet = 0
                with anyio.fail_after(60):
                    while quiet < 10:
                        before = server.statistics().frames_sent
                        await anyio.sleep(0.02)
                        stats = server.statistics()
                        quiet = quiet + 1 if stats.frames_sent == before and stats.sending else 0
                self.stalled_at = produced

        probe = WaitForStall()
        await aiofit.fit(
            CountingModel(), from_tcp(server.host, server.port), steps_per_epoch=10,
            epochs=1, max_queue_size=2, callbacks=[probe], verbose=0,
        )  # fmt: skip
    in_kernel = socket_buffer_bytes() // frame.nbytes + 1
    # consumed (4) + the engine's queue (2) + the client's frame in hand (1) + what the
    # kernel buffers + the server's read-ahead (2) and the frame in send (1)
    assert probe.stalled_at <= 4 + 2 + 1 + in_kernel + 2 + 1
    assert probe.stalled_at < 100  # and not a stream read eagerly into memory


# -- reconnects and sequence numbers -------------------------------------------------


async def test_reconnect_after_a_server_restart_resumes_without_duplicates() -> None:
    x, y, _ = make_data(160)
    async with serve_batches(x, y, batch_size=8) as server:
        port = server.port
        stream = from_tcp("127.0.0.1", port, reconnect=True, backoff=(0.01, 0.05))
        head = [await anext(stream) for _ in range(5)]
    # The first server is gone: a new one on the same port replays from sequence 0.
    async with serve_batches(x, y, batch_size=8, port=port):
        tail = await collect(stream)
    got = np.concatenate([b[0] for b in head + tail])
    np.testing.assert_array_equal(got, x)
    stats = stream.statistics()
    assert stats.connections == 2
    assert stats.frames == 20
    assert 5 <= stats.duplicates < 20


@asynccontextmanager
async def raw_server(scripts: list[list[bytes]], port: int = 0) -> AsyncIterator[Any]:
    """A server that sends connection ``i`` the bytes of ``scripts[i]``, then closes it.

    ``None`` in a script means: wait until the client closes the connection.
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    state = type("State", (), {"port": listener.extra(anyio.abc.SocketAttribute.local_port),
                               "connections": 0, "client_closed": anyio.Event()})()  # fmt: skip

    async def handle(stream: anyio.abc.SocketStream) -> None:
        script = scripts[state.connections]
        state.connections += 1
        async with stream:
            for chunk in script:
                if chunk is None:
                    # A close with unread data in the client's buffer is a reset (RST).
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await stream.receive()
                    state.client_closed.set()
                else:
                    await stream.send(chunk)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield state
        tg.cancel_scope.cancel()


def batch(seq: int) -> bytes:
    return encode_batch(seq, [np.full((2, 3), seq, dtype="f4"), np.zeros(2)])


async def test_the_client_reads_one_frame_per_batch_asked_for() -> None:
    frames = [batch(0), batch(1), batch(2), encode_end(3)]
    async with raw_server([[b"".join(frames), None]]) as server:
        async with from_tcp("127.0.0.1", server.port) as stream:
            for i in range(3):
                await anext(stream)
                # everything was sent at once, yet only the frames asked for were read
                assert stream.statistics().bytes == sum(len(f) for f in frames[: i + 1])
        with anyio.fail_after(10):
            await server.client_closed.wait()  # ``async with`` closed the connection


async def test_frames_arriving_in_small_pieces_are_waited_for_and_decoded() -> None:
    data = b"".join([batch(0), batch(1), encode_end(2)])
    cuts = [3, 24, 25, 40, 41, 100, len(batch(0)) + 5]
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def trickle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            for piece in pieces:
                await stream.send(piece)
                await anyio.sleep(0.005)  # separate segments, so the client must wait

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, trickle)
        stream = from_tcp("127.0.0.1", port)
        got = await collect(stream)
        tg.cancel_scope.cancel()
    assert [int(b[0][0, 0]) for b in got] == [0, 1]
    assert stream.statistics().bytes == len(data)


async def test_cancelling_a_read_mid_frame_closes_the_connection() -> None:
    async with raw_server([[batch(0), batch(1)[:40], None]]) as server:
        stream = from_tcp("127.0.0.1", server.port)
        assert int((await anext(stream))[0][0, 0]) == 0
        with anyio.move_on_after(0.2) as scope:
            await anext(stream)  # waits forever for the rest of frame 1
        assert scope.cancelled_caught
        with anyio.fail_after(10):
            await server.client_closed.wait()
        assert await collect(stream) == []  # a cancelled stream is finished
    gc.collect()  # an unclosed socket would warn (ResourceWarning is an error here)


async def test_a_truncated_frame_then_reconnect_delivers_every_frame_once() -> None:
    cut = batch(2)[:-7]
    scripts = [
        [batch(0), batch(1), cut],
        [batch(0), batch(1), batch(2), batch(3), encode_end(4)],
    ]
    async with raw_server(scripts) as server:
        stream = from_tcp("127.0.0.1", server.port, reconnect=True, backoff=(0.01, 0.01))
        got = await collect(stream)
    assert [int(b[0][0, 0]) for b in got] == [0, 1, 2, 3]
    assert stream.statistics().duplicates == 2


async def test_a_gap_after_reconnect_names_the_lost_frames() -> None:
    scripts = [[batch(0), batch(1), batch(2)], [batch(5)]]
    async with raw_server(scripts) as server:
        stream = from_tcp("127.0.0.1", server.port, reconnect=True, backoff=(0.01, 0.01))
        with pytest.raises(ProtocolError, match="frame 5: frames 3 to 4 were lost"):
            await collect(stream)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([batch(0), batch(1), batch(1)], "frame 1: a duplicate .* expected sequence number 2"),
        ([batch(0), batch(2)], "frame 2: a gap .* expected sequence number 1"),
    ],
)
async def test_numbering_within_a_connection_must_be_contiguous(
    frames: list[bytes], match: str
) -> None:
    async with raw_server([[*frames, None]]) as server:
        with pytest.raises(ProtocolError, match=match):
            await collect(from_tcp("127.0.0.1", server.port))
        with anyio.fail_after(10):
            await server.client_closed.wait()  # the client closed the connection


async def test_a_dropped_stream_without_reconnect_is_an_error() -> None:
    async with raw_server([[batch(0), batch(1)]]) as server:
        with pytest.raises(ProtocolError, match="without an end-of-stream frame after sequ"):
            await collect(from_tcp("127.0.0.1", server.port))
    async with raw_server([[batch(0), batch(1)[:30]]]) as server:
        with pytest.raises(ProtocolError, match="truncated frame"):
            await collect(from_tcp("127.0.0.1", server.port))


async def test_a_bad_frame_stops_fit_with_the_model_untouched() -> None:
    model = make_model()
    before = model.get_weights()
    bad = bytearray(encode_batch(0, [np.zeros((4, 6), "f4"), np.zeros(4)]))
    bad[:4] = b"JUNK"
    async with raw_server([[bytes(bad), None]]) as server:
        with pytest.raises(ProtocolError, match="the first frame: bad magic b'JUNK'"):
            await model.fit(from_tcp("127.0.0.1", server.port), verbose=0)
        with anyio.fail_after(10):
            await server.client_closed.wait()
    for a, b in zip(model.get_weights(), before, strict=True):
        assert np.array_equal(a, b)


async def test_an_oversized_frame_is_refused_unread() -> None:
    big = encode_batch(0, [np.zeros((64, 64), "f8"), np.zeros(64)])
    async with raw_server([[big, None]]) as server:
        stream = from_tcp("127.0.0.1", server.port, max_frame_bytes=1000)
        with pytest.raises(ProtocolError, match="frame 0: payload length .* exceeds max_frame"):
            await collect(stream)
        assert stream.statistics().bytes == 24  # the header alone was read


async def test_a_host_name_is_resolved_and_each_address_tried() -> None:
    # "localhost" may resolve to ::1 first, where nothing listens: the next address works
    async with raw_server([[batch(0), encode_end(1)]]) as server:
        got = await collect(from_tcp("localhost", server.port))
    assert [int(b[0][0, 0]) for b in got] == [0]


async def test_an_unreachable_server_is_a_connection_error() -> None:
    async with raw_server([]) as server:
        port = server.port  # a port that was just free, and is closed again below
    with pytest.raises(ConnectionError, match=f"cannot connect to 127.0.0.1:{port}"):
        await collect(from_tcp("127.0.0.1", port))
    stream = from_tcp("127.0.0.1", port, reconnect=True, max_retries=2, backoff=(0.01, 0.02))
    with pytest.raises(ConnectionError, match="gave up after 2 retries"):
        await collect(stream)


async def test_cancelling_fit_closes_the_connection_and_the_generator() -> None:
    closed = []

    async def endless() -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        try:
            while True:
                yield np.zeros((4, 6), "f4"), np.zeros(4)
        finally:
            closed.append(True)

    async with serve_batches(endless()) as server:
        with anyio.CancelScope() as scope:

            class Cancel(Callback):
                def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                    if batch == 3:
                        scope.cancel()

            await make_model().fit(
                from_tcp(server.host, server.port), steps_per_epoch=100, callbacks=[Cancel()],
                verbose=0,
            )  # fmt: skip
        assert scope.cancelled_caught
    assert closed == [True]
    gc.collect()  # an unclosed socket would warn (ResourceWarning is an error here)


def test_from_tcp_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="port must be a int. Received: port='80'"):
        from_tcp("127.0.0.1", "80")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Received: backoff=\(1.0, 0.5\)"):
        from_tcp("127.0.0.1", 1, backoff=(1.0, 0.5))
    with pytest.raises(ValueError, match="max_frame_bytes must be positive. Received: 0"):
        from_tcp("127.0.0.1", 1, max_frame_bytes=0)
    with pytest.raises(ValueError, match="epochs must be at least 1, or None. Received: epochs=0"):
        serve_batches(np.zeros((4, 2)), np.zeros(4), epochs=0)
