"""examples/service.py: training inside a real web service (uvicorn on 127.0.0.1).

The service is asyncio-only (uvicorn is), so these tests run on asyncio and uvloop,
not trio. The truth they check against is a plain ``fit`` of the same seeded model
on the same data, with no server and no requests.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import socket
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import numpy as np
import pytest

from .conftest import ASYNCIO_BACKENDS

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from aiofit import callbacks, datasets  # noqa: E402
from aiofit.sources import serve_batches  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "service.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiofit_service_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


service_example = _load_example()
X, Y = datasets.load_digits()
QUERY = X[:8]


@pytest.fixture(params=ASYNCIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """uvicorn runs on asyncio only: no trio here."""
    return request.param  # type: ignore[no-any-return]


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The app served by uvicorn on a free loopback port, a client, and the service."""
    app = service_example.create_app()
    # uvicorn binds the socket itself: a socket made with proto=0 and passed in
    # would make plain asyncio skip TCP_NODELAY, and every request would wait 40 ms
    # for a delayed ACK.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            timeout_graceful_shutdown=5)  # fmt: skip
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client, app.state.service
        server.should_exit = True
    assert not [t for t in threading.enumerate() if t.name.startswith("aiofit")]


async def wait_done(service: Any) -> None:
    with anyio.fail_after(60):
        if service.running is not None:
            await service.running[1].wait()


async def reference_fit(
    epochs: int, batch_size: int, record: set[int]
) -> tuple[list[Any], dict[str, Any], dict[int, list[Any]]]:
    """A plain fit (no server, no requests), and a lockstep one recording weights at steps."""
    plain = service_example.digits_model(0)
    history = await plain.fit(X, Y, epochs=epochs, batch_size=batch_size, verbose=0)
    recorded: dict[int, list[Any]] = {}

    class Record(callbacks.Callback):
        step = 0

        def on_train_begin(self, logs: Any = None) -> None:
            if 0 in record:
                recorded[0] = self.model.get_weights()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.step += 1
            if self.step in record:
                recorded[self.step] = self.model.get_weights()

    model = service_example.digits_model(0)
    await model.fit(X, Y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[Record()])
    return plain.get_weights(), history.history, recorded


async def fire(client: httpx.AsyncClient, n: int, clients: int) -> list[tuple[str, float, Any]]:
    """``n`` requests, alternately /predict and /status, from ``clients`` concurrent tasks."""
    results: list[tuple[str, float, Any]] = []
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            start = time.perf_counter()
            if i % 2:
                response = await client.get("/status")
            else:
                response = await client.post("/predict", json={"x": QUERY.tolist()})
            elapsed = time.perf_counter() - start
            results.append((response.request.url.path, elapsed, response))

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(worker)
    return results


@pytest.mark.anyio
async def test_requests_during_training_all_succeed_and_change_nothing() -> None:
    epochs, batch_size = 20, 16
    async with serving() as (client, service):
        response = await client.post(
            "/train", json={"data": "digits", "epochs": epochs, "batch_size": batch_size})
        assert response.status_code == 202, response.text
        assert (await client.post("/train", json={"epochs": 1})).status_code == 409
        results = await fire(client, 200, clients=4)
        await wait_done(service)
        final = (await client.get("/status")).json()
        trained = service.model.get_weights()
    assert [r.status_code for _, _, r in results] == [200] * 200
    predicted = [r.json() for path, _, r in results if path == "/predict"]
    steps = {p["snapshot"]["step"] for p in predicted}
    total = epochs * math.ceil(len(X) / batch_size)
    assert final["state"] == "done"
    assert final["step"] == total
    assert min(steps) < total, "no /predict was answered while training"
    states = {r.json()["state"] for path, _, r in results if path == "/status"}
    assert "training" in states
    expected, history, recorded = await reference_fit(epochs, batch_size, steps)
    # The run with 200 requests ends exactly where a plain fit does.
    for got, want in zip(trained, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert final["history"] == history
    # Every answer is the model at one whole step: never a half-updated one.
    replica = service_example.digits_model(0)
    for p in predicted:
        replica.set_weights(recorded[p["snapshot"]["step"]])
        want = replica.predict_on_batch(QUERY)
        np.testing.assert_array_equal(np.asarray(p["predictions"], np.float32), want)
        assert p["classes"] == want.argmax(axis=1).tolist()
    latencies = sorted(t for _, t, _ in results)
    p50, worst = statistics.median(latencies) * 1e3, latencies[-1] * 1e3
    print(f"{len(steps)} snapshots seen; latency p50 {p50:.1f} ms, max {worst:.1f} ms")


async def read_events(lines: AsyncIterator[str], ends: int) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event up to the ``ends``-th ``end`` event."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = "message"
    async for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
            if name == "end" and (ends := ends - 1) == 0:
                return events
            name = "message"
    raise AssertionError(f"the event stream ended early: {events}")


@pytest.mark.anyio
async def test_events_one_per_epoch_and_late_subscribers_get_later_epochs() -> None:
    async with serving() as (client, service):
        async with client.stream("GET", "/events") as early:
            assert early.headers["content-type"].startswith("text/event-stream")
            early_lines = early.aiter_lines()
            assert await anext(early_lines) == ": subscribed"
            await client.post("/train", json={"epochs": 3})
            await wait_done(service)
            first = (await client.get("/status")).json()
            async with client.stream("GET", "/events") as late:
                late_lines = late.aiter_lines()
                assert await anext(late_lines) == ": subscribed"
                await client.post("/train", json={"epochs": 2, "seed": 1})
                with anyio.fail_after(30):
                    got_early = await read_events(early_lines, ends=2)
                    got_late = await read_events(late_lines, ends=1)
            second = (await client.get("/status")).json()
    per_epoch = [data for name, data in got_early if name == "message"]
    assert [d["epoch"] for d in per_epoch] == [0, 1, 2, 0, 1]
    for key, values in first["history"].items():
        assert [d["logs"][key] for d in per_epoch[:3]] == values
    assert [name for name, _ in got_late] == ["message", "message", "end"]
    assert [d["logs"] for _, d in got_late[:2]] == [d["logs"] for d in per_epoch[3:]]
    end = got_late[-1][1]
    assert end["state"] == "done"
    assert end["history"] == second["history"]


def test_slow_subscriber_is_dropped_and_never_blocks() -> None:
    broadcast = service_example.Broadcast(buffer=2)
    slow_send, slow = broadcast.subscribe()
    _, fast = broadcast.subscribe()
    for i in range(3):
        broadcast.publish(f"data: {i}\n\n")  # returns at once: it never waits
        assert fast.receive_nowait() == f"data: {i}\n\n"
    assert slow_send not in broadcast.clients
    assert [slow.receive_nowait(), slow.receive_nowait()] == ["data: 0\n\n", "data: 1\n\n"]
    with pytest.raises(anyio.EndOfStream):
        slow.receive_nowait()
    assert len(broadcast.clients) == 1
    fast.close()
    slow.close()
    broadcast.close()


@pytest.mark.anyio
async def test_delete_cancels_within_a_batch_and_serves_the_last_weights() -> None:
    async with serving() as (client, service):
        assert (await client.delete("/train")).status_code == 404
        per_epoch = math.ceil(len(X) / 32)
        async with client.stream("GET", "/events") as events:
            lines = events.aiter_lines()
            assert await anext(lines) == ": subscribed"
            await client.post("/train", json={"epochs": 1000})
            with anyio.fail_after(30):
                async for line in lines:  # the first epoch has ended
                    if line.startswith("data: "):
                        break
            response = await client.delete("/train")
        assert response.status_code == 200, response.text
        status = response.json()
        assert status["state"] == "cancelled"
        assert per_epoch <= status["step"] < 1000 * per_epoch
        assert not [t for t in threading.enumerate() if t.name.startswith("aiofit-compute")]
        assert (await client.delete("/train")).status_code == 404
        big = X[:600]  # over INLINE_VALUES: predicted in a worker thread
        assert big.size > service_example.INLINE_VALUES >= QUERY.size
        for query in (QUERY, big):
            answer = (await client.post("/predict", json={"x": query.tolist()})).json()
            assert answer["snapshot"]["step"] == status["step"]
            want = service.model.predict_on_batch(query)
            np.testing.assert_array_equal(np.asarray(answer["predictions"], np.float32), want)
        assert (await client.post("/train", json={"epochs": 1})).status_code == 202
        await wait_done(service)
        assert (await client.get("/status")).json()["state"] == "done"


def _npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


BAD_TRAIN = [
    ({"data": "mnist"}, 422, "data must be"),
    ({"epochs": 0}, 422, "epochs must be an integer"),
    ({"batch_size": "32"}, 422, "batch_size must be an integer"),
    ({"shuffle": "yes"}, 422, "shuffle must be true or false"),
    ({"data": {"x": [[1.0, 2.0]], "y": [0]}}, 422, "64 features per row"),
    ({"data": {"x": [[0.0] * 64, [0.0]], "y": [0, 1]}}, 422, "rectangular"),
    ({"data": {"x": [[0.0] * 64], "y": [10]}}, 422, "labels must be in [0, 10)"),
    ({"data": {"x": [[0.0] * 64] * 2, "y": [1]}}, 422, "one integer label per row"),
    ({"data": {"tcp": {"host": "127.0.0.1", "port": 1}}, "epochs": 2}, 422, "steps_per_epoch"),
    ({"data": {"tcp": {"host": "127.0.0.1", "port": "x"}}}, 422, "port must be a int"),
]


@pytest.mark.anyio
async def test_bad_input_gets_a_clear_4xx() -> None:
    async with serving() as (client, service):
        predict = await client.post("/predict", json={"x": QUERY.tolist()})
        assert predict.status_code == 409
        assert "POST /train first" in predict.json()["error"]
        bad_json = await client.post("/train", content=b"{not json")
        assert bad_json.status_code == 400
        assert "not valid JSON" in bad_json.json()["error"]
        for body, code, message in BAD_TRAIN:
            response = await client.post("/train", json=body)
            assert response.status_code == code, (body, response.text)
            error = response.json()["error"]
            assert message in error, (body, error)
            assert "Received: " in error, (body, error)
        garbage = await client.post("/train", content=b"PK garbage",
                                    headers={"content-type": "application/x-npz"})  # fmt: skip
        assert garbage.status_code == 422
        assert ".npz" in garbage.json()["error"]
        assert service.status.state == "idle"
        upload = _npz(x=X[:100], y=Y[:100])
        response = await client.post("/train?epochs=2&batch_size=25", content=upload,
                                     headers={"content-type": "application/x-npz"})  # fmt: skip
        assert response.status_code == 202, response.text
        await wait_done(service)
        status = (await client.get("/status")).json()
        assert (status["state"], status["source"], status["step"]) == ("done", "upload", 8)
        for x, code in (([[0.0] * 63], 422), ([[float("nan")] * 64], 422), ([], 422)):
            response = await client.post("/predict", content=json.dumps({"x": x}))
            assert response.status_code == code, response.text
        assert (await client.post("/predict", json={"rows": 1})).status_code == 422
        assert (await client.get("/predict")).status_code == 405


@pytest.mark.anyio
async def test_trains_from_a_tcp_stream_and_reports_failures() -> None:
    async with serving() as (client, service), serve_batches(X, Y, batch_size=64) as server:
        body = {"data": {"tcp": {"host": server.host, "port": server.port}}, "epochs": 1}
        assert (await client.post("/train", json=body)).status_code == 202
        await wait_done(service)
        status = (await client.get("/status")).json()
        assert (status["state"], status["source"]) == ("done", "tcp")
        assert status["step"] == math.ceil(len(X) / 64)
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()  # nothing listens there now
        body = {"data": {"tcp": {"host": "127.0.0.1", "port": port}}, "epochs": 1}
        assert (await client.post("/train", json=body)).status_code == 202
        await wait_done(service)
        status = (await client.get("/status")).json()
    assert status["state"] == "failed"
    assert status["error"].startswith("ConnectionError: cannot connect to 127.0.0.1")
