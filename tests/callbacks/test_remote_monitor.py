"""RemoteMonitor against a real HTTP server on 127.0.0.1, run in a thread by each test."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote_plus

import anyio
import numpy as np
import pytest

from aiofit.callbacks import LambdaCallback, RemoteMonitor
from aiofit.callbacks.remote_monitor import THREAD_NAME

from .conftest import small_model, sum_data

pytestmark = pytest.mark.anyio

# Far above what any of these runs needs; only a broken bound would reach it.
LIVENESS = 30


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    url: str
    mode: str  # "ok", "hold" (answer once `release` is set), "hang" (never answer), "error"
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def bodies(self) -> list[Any]:
        """Each request's payload, decoded from its form or JSON body."""
        out = []
        for request in self.requests:
            if request.headers["content-type"] == "application/json":
                out.append(json.loads(request.body))
            else:
                form = parse_qs(request.body.decode())
                out.append({name: json.loads(value) for name, (value,) in form.items()})
        return out


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.requests.append(Received(self.path, headers, body))
            if server.mode == "hang":
                server.stop.wait()
                self.close_connection = True
                return
            if server.mode == "hold":
                server.release.wait(LIVENESS)
            self.send_response(500 if server.mode == "error" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve(mode: str = "ok") -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server = Server(f"http://127.0.0.1:{httpd.server_address[1]}", mode)
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.stop.set()
        httpd.shutdown()
        httpd.server_close()  # joins the handler threads
        thread.join()


@contextlib.contextmanager
def refused_url() -> Iterator[str]:
    """A port that is bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def sender_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


async def test_form_bodies_per_epoch_match_the_logs_of_fit() -> None:
    x, y = sum_data()
    with serve() as server:
        monitor = RemoteMonitor(root=server.url, headers={"X-Token": "s3cret"})
        history = await small_model().fit(
            x, y, epochs=3, batch_size=8, validation_data=(x, y), verbose=0, callbacks=[monitor]
        )
    assert [r.path for r in server.requests] == ["/publish/epoch/end/"] * 3
    for request in server.requests:
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.headers["x-token"] == "s3cret"
    expected = [
        {"epoch": epoch, **{key: values[epoch] for key, values in history.history.items()}}
        for epoch in range(3)
    ]
    assert set(expected[0]) == {"epoch", "loss", "mae", "val_loss", "val_mae"}
    assert server.bodies() == [{"data": e} for e in expected]
    assert not sender_threads()


async def test_form_body_is_keras_exact_and_numpy_values_become_plain_numbers() -> None:
    with serve() as server:
        monitor = RemoteMonitor(root=server.url, path="/logs", field="payload")
        await monitor.on_train_begin({})
        await monitor.on_epoch_end(4, {"loss": np.float32(0.25), "n": np.array([7])})
        await monitor.on_train_end({})
    (request,) = server.requests
    assert request.path == "/logs"
    sent = json.dumps({"epoch": 4, "loss": 0.25, "n": 7})
    assert request.body.decode() == "payload=" + quote_plus(sent)


async def test_json_bodies_and_custom_headers() -> None:
    with serve() as server:
        monitor = RemoteMonitor(
            root=server.url, send_as_json=True, headers={"Authorization": "Bearer t"}
        )
        await monitor.on_train_begin({})
        for epoch, loss in enumerate([1.5, 0.75]):
            await monitor.on_epoch_end(epoch, {"loss": np.float64(loss), "accuracy": 0.5})
        await monitor.on_train_end({})
    for request in server.requests:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["authorization"] == "Bearer t"
    assert server.bodies() == [
        {"epoch": 0, "loss": 1.5, "accuracy": 0.5},
        {"epoch": 1, "loss": 0.75, "accuracy": 0.5},
    ]


async def test_epoch_hooks_return_while_the_server_holds_the_first_post() -> None:
    with serve("hold") as server:
        monitor = RemoteMonitor(root=server.url, timeout=LIVENESS)
        await monitor.on_train_begin({})
        # If a hook waited for the server this would deadlock: only we release it, below.
        for epoch in range(3):
            await monitor.on_epoch_end(epoch, {"loss": float(epoch)})
        assert len(server.requests) <= 1
        server.release.set()
        await monitor.on_train_end({})
    assert [body["data"]["epoch"] for body in server.bodies()] == [0, 1, 2]


async def test_a_hanging_server_costs_at_most_the_timeout_and_warns() -> None:
    x, y = sum_data()
    with serve("hang") as server:
        monitor = RemoteMonitor(root=server.url, timeout=0.3)
        with (
            anyio.fail_after(LIVENESS),
            pytest.warns(UserWarning, match="Could not reach RemoteMonitor root server at"),
        ):
            history = await small_model().fit(
                x, y, epochs=3, batch_size=8, verbose=0, callbacks=[monitor]
            )
        assert history.epoch == [0, 1, 2]
        assert len(server.requests) >= 1
        assert not sender_threads()


async def test_a_refused_connection_warns_and_training_is_unaffected() -> None:
    x, y = sum_data()
    with refused_url() as url:
        quiet = await small_model().fit(x, y, epochs=2, batch_size=8, verbose=0)
        monitor = RemoteMonitor(root=url, timeout=5)
        expected = f"Could not reach RemoteMonitor root server at {re.escape(url)}"
        with pytest.warns(UserWarning, match=expected):
            history = await small_model().fit(
                x, y, epochs=2, batch_size=8, verbose=0, callbacks=[monitor]
            )
    assert history.history == quiet.history
    assert not sender_threads()


async def test_an_http_error_status_warns() -> None:
    with serve("error") as server:
        monitor = RemoteMonitor(root=server.url)
        await monitor.on_train_begin({})
        await monitor.on_epoch_end(0, {"loss": 1.0})
        with pytest.warns(UserWarning, match="HTTP 500"):
            await monitor.on_train_end({})
    assert len(server.requests) == 1


async def test_epochs_beyond_max_pending_are_dropped_with_a_warning() -> None:
    with serve("hang") as server:
        monitor = RemoteMonitor(root=server.url, timeout=2, max_pending=1)
        await monitor.on_train_begin({})
        await monitor.on_epoch_end(0, {"loss": 1.0})
        with pytest.warns(UserWarning, match="dropped the logs of epoch 1"):
            await monitor.on_epoch_end(1, {"loss": 0.5})
        with pytest.warns(UserWarning, match="Could not reach"):
            await monitor.on_train_end({})
    assert [r.body for r in server.requests] == [
        b"data=" + quote_plus(json.dumps({"epoch": 0, "loss": 1.0})).encode()
    ]


async def test_cancelling_fit_leaves_no_sender_behind() -> None:
    x, y = sum_data()
    with serve("hang") as server:
        monitor = RemoteMonitor(root=server.url, timeout=0.3)
        scope = anyio.CancelScope()
        cancel = LambdaCallback(on_epoch_end=lambda epoch, logs: scope.cancel())
        with (
            anyio.fail_after(LIVENESS),
            pytest.warns(UserWarning, match="Could not reach"),
            scope,
        ):
            await small_model().fit(
                x, y, epochs=50, batch_size=8, verbose=0, callbacks=[monitor, cancel]
            )
        assert scope.cancelled_caught
        assert server.requests  # the post had started before the cancellation
    assert not sender_threads()


async def test_one_instance_serves_several_fits() -> None:
    x, y = sum_data()
    with serve() as server:
        monitor = RemoteMonitor(root=server.url, send_as_json=True)
        for _ in range(2):
            await small_model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[monitor])
    assert [body["epoch"] for body in server.bodies()] == [0, 1, 0, 1]
    assert not sender_threads()


def test_without_httpx_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match=r'pip install "aiofit\[http\]"'):
        RemoteMonitor()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"timeout": 0}, ValueError, "Received: timeout=0"),
        ({"timeout": float("inf")}, ValueError, "Received: timeout=inf"),
        ({"max_pending": 0}, ValueError, "Received: max_pending=0"),
        ({"headers": {"X-N": 1}}, TypeError, "Received: headers="),
        ({"root": None}, TypeError, "Received: root=None"),
        ({"root": "localhost:9000"}, ValueError, "Received: root='localhost:9000'"),
        ({"root": "http://"}, ValueError, "Received: root='http://'"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        RemoteMonitor(**kwargs)
