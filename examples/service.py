"""Training inside a web service: one process, one event loop, ``fit`` in the background.

Run: ``pip install "aiofit[service]"`` then ``python examples/service.py [--port 8000]``::

    curl -X POST localhost:8000/train -d '{"data": "digits", "epochs": 20}'
    curl localhost:8000/status
    curl -N localhost:8000/events            # one server-sent event per epoch
    curl -X POST localhost:8000/predict -d '{"x": [[0.0, 0.5, ... 64 values]]}'
    curl -X DELETE localhost:8000/train

``POST /train`` takes JSON ``{"data": ..., "epochs": 5, "batch_size": 32, "seed": 0,
"shuffle": true, "steps_per_epoch": null}`` where ``data`` is ``"digits"`` (the
shipped set), ``{"x": [[...]], "y": [...]}``, or ``{"tcp": {"host": h, "port": p}}``
(a stream from :func:`aiofit.sources.serve_batches`); or an ``.npz`` body (arrays
``x`` and ``y``, ``Content-Type: application/x-npz``) with the options in the query
string. One run at a time: a second gets 409. The requests are parsed and checked
in ``_service_requests.py`` beside this file.

Why ``/predict`` never sees a half-updated model: the steps run in aiofit's compute
thread, so the live weights may be mid-update whenever the loop looks at them.
A callback that overrides ``on_train_batch_end`` puts ``fit`` in lockstep: the
next step is submitted only after that hook returns, so inside the hook the
compute thread is idle and ``get_weights()`` (a copy) is a consistent snapshot.
Predictions run on replicas loaded from the latest snapshot, never on the live
model. Small inputs are predicted inline (a few tens of microseconds); above
:data:`INLINE_VALUES` the work goes to a thread, since a thread hand-off costs about
as much as predicting a few hundred digits.

The service runs on asyncio (and uvloop), because uvicorn does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

import aiofit
from aiofit import callbacks, layers

try:
    from _service_requests import TrainSpec, fail, parse_predict, parse_train
except ModuleNotFoundError:  # loaded by file path (the tests, the benchmark), not run
    sys.path.append(str(Path(__file__).resolve().parent))
    from _service_requests import TrainSpec, fail, parse_predict, parse_train

INLINE_VALUES = 32_768  # inputs up to this many numbers are predicted on the loop
EVENT_BUFFER = 16  # events a slow /events client may lag behind before it is dropped
Sender = MemoryObjectSendStream[str]
Receiver = MemoryObjectReceiveStream[str]


def digits_model(seed: int = 0) -> aiofit.Sequential:
    """The model the service trains: 64 pixels -> 64 relu -> 10 digits."""
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(64, activation="relu"),
         layers.Dense(10, activation="softmax")], seed=seed)  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    return model


def _jsonable(logs: dict[str, Any] | None) -> dict[str, Any]:
    """Logs as JSON values: numpy scalars to Python, NaN/inf to null (JSON has none)."""
    out: dict[str, Any] = {}
    for key, value in (logs or {}).items():
        value = value.item() if isinstance(value, np.generic) else value
        out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return out


# ---- the service -------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Weights copied while the compute thread was idle, and where training stood."""

    weights: list[np.ndarray]
    id: int  # unique across runs: replicas reload when it changes
    run: int
    epoch: int | None
    # Batches of this run whose end hook ran. After a cancellation the weights also
    # hold the step that was computing (it always finishes), whose hook never ran.
    step: int


@dataclass
class Status:
    """What ``GET /status`` returns; updated by :class:`Tracker`'s hooks."""

    state: str = "idle"  # idle, training, done, failed, cancelled
    run: int = 0
    source: str | None = None
    epochs: int | None = None
    epoch: int | None = None
    batch: int | None = None
    step: int = 0
    logs: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[Any]] = field(default_factory=dict)
    error: str | None = None


class Broadcast:
    """Fan-out of server-sent events to every subscriber, each with a bounded buffer."""

    def __init__(self, buffer: int = EVENT_BUFFER) -> None:
        self.buffer = buffer
        self.clients: set[Sender] = set()

    def subscribe(self) -> tuple[Sender, Receiver]:
        send, receive = anyio.create_memory_object_stream[str](self.buffer)
        self.clients.add(send)
        return send, receive

    def publish(self, message: str) -> None:
        """Queue ``message`` for every client; never waits (training must not)."""
        for send in list(self.clients):
            try:
                send.send_nowait(message)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                # Gone, or too slow: its stream ends after the events it has queued.
                self.drop(send)

    def drop(self, send: Sender) -> None:
        self.clients.discard(send)
        send.close()

    def close(self) -> None:
        for send in list(self.clients):
            self.drop(send)


class Tracker(callbacks.Callback):
    """Feeds :class:`Status`, the event stream and the weight snapshots from fit's hooks.

    Every hook here is a plain ``def``: they run on the loop between steps, and a
    hook that awaited would hold the next step back.
    """

    def __init__(self, service: TrainingService) -> None:
        super().__init__()
        self.service, self.status = service, service.status

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.service.take_snapshot(self.model)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.status.epoch, self.status.batch = epoch, None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.status.batch, self.status.logs = batch, _jsonable(logs)
        self.status.step += 1
        self.service.take_snapshot(self.model)  # lockstep: the compute thread is idle here

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        clean = _jsonable(logs)
        for key, value in clean.items():
            self.status.history.setdefault(key, []).append(value)
        self.service.events.publish(f"data: {json.dumps({'epoch': epoch, 'logs': clean})}\n\n")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        # fit has joined its compute thread by now, even when cancelled.
        self.service.take_snapshot(self.model)


class Replica:
    """A copy of the model for predictions, loaded lazily from the latest snapshot."""

    def __init__(self, model: Any) -> None:
        self.model, self.loaded = model, -1

    def predict(self, snapshot: Snapshot, x: np.ndarray) -> np.ndarray:
        if self.loaded != snapshot.id:
            self.model.set_weights(snapshot.weights)
            self.loaded = snapshot.id
        return np.asarray(self.model.predict_on_batch(x))


class TrainingService:
    """One background ``fit`` at a time, in the app's task group, and predictions beside it."""

    def __init__(self, tg: TaskGroup, build: Callable[[int], Any]) -> None:
        self.tg, self.build = tg, build
        self.status, self.events = Status(), Broadcast()
        self.model: Any = None  # the model of the latest run
        self.snapshot: Snapshot | None = None
        self.running: tuple[anyio.CancelScope, anyio.Event] | None = None
        probe = build(0)
        self.features, self.classes = probe.input_shape[-1], probe.output_shape[-1]
        # The inline replica is used only on the loop thread, the threaded one by at
        # most one thread at a time (the limiter): neither is ever used concurrently.
        self.inline, self.threaded = Replica(probe), Replica(build(0))
        self.limiter = anyio.CapacityLimiter(1)
        self._ids = 0

    def take_snapshot(self, model: Any) -> None:
        """Copy ``model``'s weights; call only while no step is running.

        A copy per batch costs a few microseconds for this model; for a big one,
        take it every N batches, or only when a request has asked since the last.
        """
        self._ids += 1
        status = self.status
        self.snapshot = Snapshot(model.get_weights(), self._ids, status.run, status.epoch,
                                 status.step)  # fmt: skip

    def start(self, spec: TrainSpec) -> None:
        if self.running is not None:
            raise fail(409, f"a training run is in progress (run {self.status.run}); DELETE "
                            f"/train to stop it. Received: POST /train while state "
                            f"{self.status.state!r}")  # fmt: skip
        self.status = Status("training", self.status.run + 1, spec.source, spec.epochs)
        self.running = (anyio.CancelScope(), anyio.Event())
        self.model = self.build(spec.seed)
        self.tg.start_soon(self._train, spec, *self.running)

    async def _train(self, spec: TrainSpec, scope: anyio.CancelScope, done: anyio.Event) -> None:
        status = self.status
        try:
            with scope:
                await self.model.fit(
                    spec.x, spec.y, epochs=spec.epochs, batch_size=spec.batch_size,
                    steps_per_epoch=spec.steps_per_epoch, shuffle=spec.shuffle, verbose=0,
                    callbacks=[Tracker(self)])  # fmt: skip
            status.state = "cancelled" if scope.cancelled_caught else "done"
        except Exception as exc:  # the service reports it and goes on serving
            status.state, status.error = "failed", f"{type(exc).__name__}: {exc}"
        except BaseException:  # the app is shutting down
            status.state = "cancelled"
            raise
        finally:
            self.running = None
            done.set()
            self.events.publish(f"event: end\ndata: {json.dumps(self.status_json())}\n\n")

    async def cancel(self) -> None:
        """Cancel the run in progress and wait until it has stopped (within one batch)."""
        if self.running is None:
            raise fail(404, f"no training run in progress. Received: DELETE /train while "
                            f"state {self.status.state!r}")  # fmt: skip
        scope, done = self.running
        scope.cancel()
        await done.wait()

    async def predict(self, x: np.ndarray) -> tuple[np.ndarray, Snapshot]:
        snapshot = self.snapshot
        if snapshot is None:
            raise fail(409, "no weights to predict with yet: POST /train first. "
                            f"Received: state {self.status.state!r}")  # fmt: skip
        if x.size <= INLINE_VALUES:
            return self.inline.predict(snapshot, x), snapshot
        out = await anyio.to_thread.run_sync(
            self.threaded.predict, snapshot, x, limiter=self.limiter)  # fmt: skip
        return out, snapshot

    def status_json(self) -> dict[str, Any]:
        return vars(self.status).copy()

    def close(self) -> None:
        if self.running is not None:
            self.running[0].cancel()
        self.events.close()


# ---- the app -----------------------------------------------------------------------


def _service(request: Request) -> TrainingService:
    service: TrainingService = request.app.state.service
    return service


async def train(request: Request) -> JSONResponse:
    service = _service(request)
    spec = await parse_train(request, service.features, service.classes)
    service.start(spec)
    return JSONResponse(service.status_json(), status_code=202)


async def stop(request: Request) -> JSONResponse:
    service = _service(request)
    await service.cancel()
    return JSONResponse(service.status_json())


async def status(request: Request) -> JSONResponse:
    return JSONResponse(_service(request).status_json())


async def predict(request: Request) -> JSONResponse:
    service = _service(request)
    x = await parse_predict(request, service.features)
    y, snap = await service.predict(x)
    if not np.isfinite(y).all():  # a diverged model; JSON has no NaN
        raise fail(500, f"the model's outputs are not finite. Received: step {snap.step}")
    return JSONResponse({
        "predictions": y.tolist(), "classes": y.argmax(axis=-1).tolist(),
        "snapshot": {"run": snap.run, "epoch": snap.epoch, "step": snap.step},
    })  # fmt: skip


async def events(request: Request) -> StreamingResponse:
    broadcast = _service(request).events
    send, receive = broadcast.subscribe()

    async def stream() -> AsyncIterator[str]:
        try:
            yield ": subscribed\n\n"  # a comment: the client knows it will get what follows
            async with receive:
                async for message in receive:
                    yield message
        finally:
            broadcast.drop(send)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def create_app(build: Callable[[int], Any] = digits_model) -> Starlette:
    """The Starlette app; ``build(seed)`` makes a fresh compiled model for each run."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            app.state.service = TrainingService(tg, build)
            try:
                yield
            finally:
                app.state.service.close()

    routes = [
        Route("/train", train, methods=["POST"]), Route("/train", stop, methods=["DELETE"]),
        Route("/status", status, methods=["GET"]), Route("/predict", predict, methods=["POST"]),
        Route("/events", events, methods=["GET"]),
    ]  # fmt: skip
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: _http_error})  # fmt: skip


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="aiofit training inside a web service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # Open /events streams would otherwise hold a Ctrl-C shutdown forever.
    uvicorn.run(create_app(), host=args.host, port=args.port, timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
