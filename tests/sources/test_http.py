"""from_http against a real HTTP/1.1 server on 127.0.0.1 writing chunked responses.

The server (an anyio TCP listener started by each test) sends a script of chunks;
an :class:`anyio.Event` in the script holds the rest back until the test sets it,
which is how incremental consumption is shown without sleeping.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from anyio.abc import SocketAttribute, SocketStream

import aiofit
from aiofit import layers
from aiofit.callbacks import Callback
from aiofit.sources import HttpSource, ProtocolError, from_http
from aiofit.sources.wire import encode_batch, encode_end

pytestmark = pytest.mark.anyio

Script = Sequence[bytes | anyio.Event]


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


class Server:
    """Answers every GET with ``status`` and the script, chunk by chunk (chunked encoding)."""

    def __init__(self, script: Script, status: int = 200) -> None:
        self.script = script
        self.status = status
        self.url = ""
        self.requests: list[bytes] = []
        self.disconnected = anyio.Event()  # the client closed a connection mid-response
        self.finished = 0  # responses sent to the end

    async def handle(self, stream: SocketStream) -> None:
        async with stream:
            try:
                self.requests.append(await _read_head(stream))
                if self.status != 200:
                    await stream.send(
                        b"HTTP/1.1 %d Oops\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
                        b"oops" % self.status
                    )
                    return
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._watch_close, stream, tg.cancel_scope)
                    await self._send_body(stream)
                    tg.cancel_scope.cancel()
            except (anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                self.disconnected.set()

    async def _send_body(self, stream: SocketStream) -> None:
        await stream.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for item in self.script:
            if isinstance(item, anyio.Event):
                await item.wait()
            elif item:
                await stream.send(b"%x\r\n%s\r\n" % (len(item), item))
        await stream.send(b"0\r\n\r\n")
        self.finished += 1

    async def _watch_close(self, stream: SocketStream, scope: anyio.CancelScope) -> None:
        # The client sends nothing after its request, so any receive result means it left.
        try:
            await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
        self.disconnected.set()
        scope.cancel()


async def _read_head(stream: SocketStream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive()
    return head


@asynccontextmanager
async def serving(script: Script, status: int = 200) -> AsyncIterator[Server]:
    server = Server(script, status)
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):
        port = listener.extra(SocketAttribute.local_port)
        server.url = f"http://127.0.0.1:{port}/data"
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()


def split_every(body: bytes, size: int) -> list[bytes]:
    """Chunks of ``size`` bytes: boundaries fall mid-line and mid-number."""
    return [body[i : i + size] for i in range(0, len(body), size)]


def make_records(n: int = 10, features: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "features": [float(v) for v in rng.normal(size=features)],
            "label": int(rng.integers(0, 2)),
            "w": float(rng.uniform(0.5, 2.0)),
            "id": i,
        }
        for i in range(n)
    ]


def ndjson(records: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def expected_batches(
    records: Sequence[dict[str, Any]], size: int, weights: bool = True
) -> list[tuple[np.ndarray, ...]]:
    """The batches the records should make, built straight from the Python values."""
    out = []
    for i in range(0, len(records), size):
        part = records[i : i + size]
        batch = (
            np.asarray([r["features"] for r in part], dtype=np.float32),
            np.asarray([r["label"] for r in part], dtype=np.float32),
        )
        out.append((*batch, np.asarray([r["w"] for r in part], np.float32)) if weights else batch)
    return out


async def collect(source: HttpSource) -> list[tuple[np.ndarray, ...]]:
    async with aclosing(aiter(source)) as batches:  # type: ignore[type-var]
        return [b async for b in batches]


def assert_same_batches(got: Sequence[tuple[np.ndarray, ...]], want: Sequence[Any]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w)
        for a, b in zip(g, w, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


# -- batches ------------------------------------------------------------------


async def test_ndjson_batches_match_the_records_exactly() -> None:
    records = make_records(10)
    async with serving(split_every(ndjson(records), 7)) as server:
        source = from_http(server.url, "ndjson", 4, x="features", y="label", sample_weight="w")
        batches = await collect(source)
    assert [len(b[0]) for b in batches] == [4, 4, 2]  # the last partial batch too
    assert_same_batches(batches, expected_batches(records, 4))


async def test_ndjson_several_scalar_keys_make_columns() -> None:
    rows = [{"a": 1, "b": 2.5, "t1": 0, "t2": 1}, {"a": -3, "b": 4e-3, "t1": 1, "t2": 0}]
    async with serving([ndjson(rows)]) as server:
        source = from_http(server.url, x=["a", "b"], y=["t1", "t2"], y_dtype="int64")
        ((x, y),) = await collect(source)
    np.testing.assert_array_equal(x, np.array([[1, 2.5], [-3, 4e-3]], np.float32))
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [[0, 1], [1, 0]])


async def test_csv_batches_match_the_rows_exactly_with_crlf_and_odd_chunks() -> None:
    records = make_records(7, features=2)
    lines = ["id,f0,f1,w,label"] + [
        f"{r['id']},{r['features'][0]!r},{r['features'][1]!r},{r['w']!r},{r['label']}"
        for r in records
    ]
    body = ("\r\n".join(lines) + "\r\n").encode()
    async with serving(split_every(body, 5)) as server:
        source = from_http(server.url, "csv", 3, x=["f0", "f1"], y="label", sample_weight="w")
        batches = await collect(source)
    assert_same_batches(batches, expected_batches(records, 3))


async def test_predict_batches_carry_only_x() -> None:
    records = make_records(3)
    async with serving([ndjson(records)]) as server:
        batches = await collect(from_http(server.url, x="features", batch_size=8))
    assert len(batches) == 1
    assert len(batches[0]) == 1
    np.testing.assert_array_equal(batches[0][0], expected_batches(records, 8)[0][0])


async def test_npy_frames_are_recut_to_batch_size() -> None:
    rng = np.random.default_rng(1)
    frames = [(rng.normal(size=(n, 2)), np.arange(n, dtype=np.int64)) for n in (3, 4, 2)]
    body = b"".join(encode_batch(i, f) for i, f in enumerate(frames)) + encode_end(3)
    x_all = np.concatenate([f[0] for f in frames])
    y_all = np.concatenate([f[1] for f in frames])
    async with serving(split_every(body, 50)) as server:
        recut = await collect(from_http(server.url, "npy", 4))
        as_sent = await collect(from_http(server.url, "npy", None))
    assert_same_batches(recut, [(x_all[i : i + 4], y_all[i : i + 4]) for i in (0, 4, 8)])
    assert_same_batches(as_sent, frames)


async def test_npy_truncated_or_gapped_frames_raise_protocol_error() -> None:
    x, y = np.zeros((2, 2)), np.zeros(2)
    truncated = (encode_batch(0, [x, y]) + encode_batch(1, [x, y]))[:-5]
    async with serving([truncated]) as server:
        with pytest.raises(ProtocolError, match="frame 1: truncated frame"):
            await collect(from_http(server.url, "npy"))
    gap = encode_batch(0, [x, y]) + encode_batch(2, [x, y])
    async with serving([gap]) as server:
        with pytest.raises(ProtocolError, match="frame 2 out of order, expected frame 1"):
            await collect(from_http(server.url, "npy"))


# -- training -----------------------------------------------------------------


def make_model() -> aiofit.Sequential:
    model = aiofit.Sequential(
        [layers.Input(shape=(3,)), layers.Dense(8, activation="relu"), layers.Dense(2)],
        seed=7,
    )
    model.compile(
        optimizer="adam",
        loss=aiofit.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


async def test_fit_from_http_equals_fit_from_memory_bit_for_bit() -> None:
    records = make_records(22)
    async with serving(split_every(ndjson(records), 64)) as server:
        source = from_http(server.url, "ndjson", 5, x="features", y="label", sample_weight="w")
        model = make_model()
        history = await model.fit(source, epochs=3, shuffle=False, verbose=0)
    assert len(server.requests) == 3  # one GET per epoch
    ref = make_model()
    ref_history = await ref.fit(expected_batches(records, 5), epochs=3, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert history.history == ref_history.history


async def test_steps_per_epoch_continues_one_response_across_epochs() -> None:
    records = make_records(12)
    async with serving(split_every(ndjson(records), 100)) as server:
        source = from_http(server.url, batch_size=2, x="features", y="label")
        model = make_model()
        await model.fit(source, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0)
    assert len(server.requests) == 1  # no restart between epochs
    ref = make_model()
    in_memory = [b[:2] for b in expected_batches(records, 2)]
    await ref.fit(in_memory, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


async def test_first_batch_is_trained_before_the_server_sends_the_rest() -> None:
    records = make_records(8)
    body = ndjson(records)
    first = body[: body.index(b"\n", len(ndjson(records[:3]))) + 1]  # exactly 4 lines
    release = anyio.Event()
    order: list[str] = []

    class Release(Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            order.append(f"trained {batch}")
            release.set()  # only now may the server send records 5-8

    async with serving([first, release, body[len(first) :]]) as server:
        source = from_http(server.url, batch_size=4, x="features", y="label")
        with anyio.fail_after(30):  # a deadlock guard: the source must not wait for the body
            await make_model().fit(source, callbacks=[Release()], verbose=0, shuffle=False)
    assert order == ["trained 0", "trained 1"]
    assert server.finished == 1


# -- malformed input ------------------------------------------------------------

GOOD = b'{"features": [1, 2, 3], "label": 1}\n'
BAD_LINES = [
    (b'{"features": [1, 2, 3], "label": 1\n', "not valid JSON"),
    (b'{"features": [1, 2, 3]}\n', "missing key 'label'"),
    (b'{"features": [1, "x", 3], "label": 0}\n', "must be a number"),
    (b'{"features": [1, 2], "label": 0}\n', r"x has shape \(2,\), unlike .*\(3,\) \(line 1\)"),
    (b'{"features": [1, NaN, 3], "label": 0}\n', "non-finite"),
    (b"[1, 2, 3]\n", "expected a JSON object"),
    (b'{"features": [1, 2, 3], "label": true}\n', "must be a number"),
    (b'{"features": [1, 2, 3], "label": 0}\xff\n', "not valid JSON"),
]


@pytest.mark.parametrize(("bad", "problem"), BAD_LINES)
async def test_malformed_line_raises_data_error_with_its_line_number(
    bad: bytes, problem: str
) -> None:
    async with serving([GOOD, b"\n", bad, GOOD]) as server:  # the bad line is line 3
        source = from_http(server.url, x="features", y="label")
        with pytest.raises(
            aiofit.DataError, match=rf"ndjson line 3 of http://127.0.0.1:\d+/data: .*{problem}"
        ):
            await collect(source)


async def test_skipped_lines_are_counted_logged_and_put_in_history(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = make_records(6)
    lines = [json.dumps(r).encode() + b"\n" for r in records]
    lines.insert(2, b'{"features": "oops", "label": 1}\n')  # line 3
    lines.insert(5, b"garbage\n")  # line 6
    async with serving([b"".join(lines)]) as server:
        source = from_http(
            server.url, batch_size=3, x="features", y="label", sample_weight="w",
            on_error="skip",
        )  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="aiofit.sources.http"):
            history = await make_model().fit(
                source, epochs=2, verbose=0, shuffle=False, callbacks=[source.skip_counter()]
            )
            batches = await collect(source)
    assert source.skipped == 6  # 2 per response, 3 responses
    assert history.history["skipped_lines"] == [2, 4]
    assert_same_batches(batches, expected_batches(records, 3))
    messages = [r.getMessage() for r in caplog.records]
    assert any("ndjson line 3 of" in m and "must be a number" in m for m in messages)
    assert any("ndjson line 6 of" in m and "not valid JSON" in m for m in messages)
    assert any("skipped 2 malformed line(s) of 8" in m for m in messages)


async def test_csv_malformed_rows_and_a_missing_header_column() -> None:
    body = b"a,b,label\n1,2,0\n1,2\n1,x,1\n3,4,1\n"
    async with serving([body]) as server:
        with pytest.raises(aiofit.DataError, match="csv line 3 of .*: expected 3 fields, got 2"):
            await collect(from_http(server.url, "csv", x=["a", "b"], y="label"))
        skipping = from_http(server.url, "csv", x=["a", "b"], y="label", on_error="skip")
        batches = await collect(skipping)
        assert skipping.skipped == 2
        np.testing.assert_array_equal(batches[0][0], [[1, 2], [3, 4]])
        with pytest.raises(aiofit.DataError, match=r"csv line 1 .*no column\(s\) \['c'\]"):
            await collect(from_http(server.url, "csv", x=["a", "c"], y="label", on_error="skip"))


async def test_an_overlong_line_is_refused_without_holding_it() -> None:
    async with serving([GOOD, b"[" + b"1," * 600, b"1]\n"]) as server:
        source = from_http(server.url, x="features", y="label", max_line_bytes=1000)
        with pytest.raises(aiofit.DataError, match="line 2 .* longer than max_line_bytes=1000"):
            await collect(source)


# -- HTTP errors, cancellation, clients -----------------------------------------------


async def test_http_500_raises_http_status_error_as_itself() -> None:
    async with serving([], status=500) as server:
        source = from_http(server.url, x="features", y="label")
        with pytest.raises(httpx.HTTPStatusError, match="500") as info:
            await make_model().fit(source, verbose=0)
    assert server.url in str(info.value)
    assert info.value.response.status_code == 500


async def test_cancelling_fit_mid_stream_closes_the_connection() -> None:
    never = anyio.Event()
    async with serving([ndjson(make_records(4)), never]) as server:
        source = from_http(server.url, batch_size=2, x="features", y="label")

        class Cancel(Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                scope.cancel()

        with anyio.CancelScope() as scope:
            await make_model().fit(source, callbacks=[Cancel()], verbose=0)
        assert scope.cancelled_caught
        with anyio.fail_after(10):
            await server.disconnected.wait()
    gc.collect()  # an unclosed socket would raise ResourceWarning here (an error)


async def test_a_client_passed_in_is_used_and_left_open() -> None:
    never = anyio.Event()
    async with (
        serving([ndjson(make_records(4)), never]) as server,
        httpx.AsyncClient(headers={"X-Token": "abc"}) as client,
    ):
        source = from_http(server.url, batch_size=2, x="features", y="label", client=client)
        async with aclosing(aiter(source)) as batches:  # type: ignore[type-var]
            first = await anext(batches)
        assert len(first[0]) == 2
        with anyio.fail_after(10):
            await server.disconnected.wait()  # the unfinished response was closed
        assert not client.is_closed
        assert b"x-token: abc" in server.requests[0].lower()
        never.set()
        assert len(await collect(source)) == 2  # the same client still works


# -- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"format": "xml", "x": "a"}, ValueError, "format must be one of"),
        ({"x": "a", "on_error": "ignore"}, ValueError, "on_error must be"),
        ({"x": "a", "batch_size": 0}, ValueError, "batch_size must be a positive int"),
        ({"x": "a", "batch_size": None}, ValueError, "batch_size=None is only for"),
        ({}, ValueError, "needs x"),
        ({"x": 3}, TypeError, "x must be a key name"),
        ({"x": "a", "sample_weight": "w"}, ValueError, "sample_weight needs y"),
        ({"format": "npy", "x": "a"}, ValueError, "leave x, y"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        from_http("http://127.0.0.1:9/never", **kwargs)


def test_without_httpx_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match=r'pip install "aiofit\[http\]"'):
        from_http("http://127.0.0.1:9/never", x="a")
