"""Cancelling the task that runs fit/evaluate/predict, at every stage, leaves nothing behind."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from aiofit.callbacks import Callback
from aiofit.engine import evaluate, fit, predict

from .conftest import LinearModel, Recorder, batches_of, engine_threads, make_data

pytestmark = pytest.mark.anyio


class Leaks:
    """Counts of running tasks before; compares after (plus engine threads)."""

    def __init__(self) -> None:
        self.tasks = len(anyio.get_running_tasks())

    def assert_none(self) -> None:
        gc.collect()
        assert len(anyio.get_running_tasks()) == self.tasks
        assert engine_threads() == []


class Stream:
    """Async generator of batches; at ``hang_at`` it cancels ``scope`` (if any) and hangs."""

    def __init__(self, batches: list[Any], scope: anyio.CancelScope | None, hang_at: int) -> None:
        self.closed = False
        self.hung = False
        self.pulled = 0
        self.gen = self._run(batches, scope, hang_at)

    async def _run(
        self, batches: list[Any], scope: anyio.CancelScope | None, hang_at: int
    ) -> AsyncIterator[Any]:
        try:
            for i, b in enumerate(batches):
                if i == hang_at:
                    self.hung = True
                    if scope is not None:
                        scope.cancel()
                    await anyio.sleep_forever()
                self.pulled += 1
                yield b
        finally:
            self.closed = True


def cancelled_at_step(at: int) -> tuple[anyio.CancelScope, LinearModel, list[int]]:
    """A scope, and a model whose train step ``at`` cancels it from the compute thread.

    The list collects the index of every step that ran to its end.
    """
    token = anyio.lowlevel.current_token()
    scope = anyio.CancelScope()
    finished: list[int] = []

    def cancel_inside(index: int) -> None:
        if index == at:
            anyio.from_thread.run_sync(scope.cancel, token=token)
        finished.append(index)

    model = LinearModel()
    model.on_step = cancel_inside
    return scope, model, finished


async def test_cancel_during_a_step_stops_after_that_step(recorder: Recorder) -> None:
    leaks = Leaks()
    scope, model, finished = cancelled_at_step(1)
    x, y = make_data(40)
    with scope:
        await fit(model, x, y, batch_size=2, epochs=3, verbose=0, callbacks=[recorder])
    assert scope.cancelled_caught
    # The step in flight completes (weights are never half updated); no step after it.
    assert finished == [0, 1]
    assert recorder.names()[-1] == "on_train_end"
    leaks.assert_none()


async def test_cancel_with_steps_queued_ahead_runs_no_queued_step() -> None:
    """In-memory data, no callbacks: steps are queued ahead; cancelling drops the queue."""
    leaks = Leaks()
    scope, model, finished = cancelled_at_step(1)
    x, y = make_data(400)
    with scope:
        await fit(model, x, y, batch_size=2, epochs=3, verbose=0)
    assert scope.cancelled_caught
    # The cancellation reaches the engine's wait while step 1 runs; the compute
    # thread sees it before starting step 2, though the engine task has not run
    # yet (steps of microseconds would otherwise slip in). The thread is joined:
    # nothing runs after fit.
    assert finished == [0, 1]
    leaks.assert_none()
    assert len(model.trained()) == len(finished)


async def test_cancel_while_waiting_on_the_source_closes_it(recorder: Recorder) -> None:
    leaks = Leaks()
    x, y = make_data(20)
    scope = anyio.CancelScope()
    stream = Stream(batches_of(x, y, 2), None, hang_at=3)

    class CancelAfter(Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 2:
                # The source hangs at batch 3: this hook must not wait for it, and
                # the engine is then cancelled while waiting on the source.
                scope.cancel()

    model = LinearModel()
    with scope:
        await fit(model, stream.gen, verbose=0, callbacks=[CancelAfter(), recorder])
    assert scope.cancelled_caught
    assert len(model.trained()) == 3
    assert stream.hung
    assert stream.closed  # aclose()d, its finally ran
    assert stream.gen.ag_frame is None
    assert recorder.names()[-1] == "on_train_end"
    leaks.assert_none()


async def test_cancel_inside_an_async_callback(recorder: Recorder) -> None:
    leaks = Leaks()
    scope = anyio.CancelScope()

    class Hang(Callback):
        async def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            scope.cancel()
            await anyio.sleep_forever()

    class Releases(Callback):
        released = False

        async def on_train_end(self, logs: Any = None) -> None:
            await anyio.lowlevel.checkpoint()  # async work still possible while cancelled
            Releases.released = True

    x, y = make_data(8)
    with scope:
        await fit(
            LinearModel(), x, y, epochs=3, verbose=0, callbacks=[Hang(), Releases(), recorder]
        )
    assert scope.cancelled_caught
    assert Releases.released
    assert recorder.names()[-1] == "on_train_end"
    assert recorder.names().count("on_epoch_begin") == 1
    leaks.assert_none()


async def test_cancel_while_waiting_on_the_validation_source() -> None:
    leaks = Leaks()
    x, y = make_data(8)
    scope = anyio.CancelScope()
    val = Stream(batches_of(x, y, 2), scope, hang_at=1)
    with scope:
        await fit(LinearModel(), x, y, epochs=2, verbose=0, validation_data=val.gen)
    assert scope.cancelled_caught
    assert val.closed
    leaks.assert_none()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_cancel_with_a_streamed_source_runs_no_queued_step(kind: str) -> None:
    # Streams queue the next buffered batch's step behind the running one.
    leaks = Leaks()
    scope, model, finished = cancelled_at_step(2)
    x, y = make_data(40)

    def gen() -> Iterator[Any]:
        yield from batches_of(x, y, 2)

    async def agen() -> AsyncIterator[Any]:
        for batch in batches_of(x, y, 2):
            yield batch

    with scope:
        await fit(model, gen() if kind == "sync" else agen(), verbose=0)
    assert scope.cancelled_caught
    assert finished == [0, 1, 2]
    assert len(model.trained()) == 3
    leaks.assert_none()  # the sync source's thread is stopped too


@pytest.mark.parametrize("call", ["evaluate", "predict"])
async def test_cancel_evaluate_and_predict(call: str) -> None:
    leaks = Leaks()
    x, y = make_data(20)
    scope = anyio.CancelScope()
    batches: list[Any] = batches_of(x, y, 2)
    if call == "predict":
        batches = [(b[0],) for b in batches]
    stream = Stream(batches, None, hang_at=2)

    class CancelAfter(Callback):
        def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 1:
                scope.cancel()

        on_predict_batch_end = on_test_batch_end

    model = LinearModel()
    with scope:
        if call == "evaluate":
            await evaluate(model, stream.gen, verbose=0, callbacks=[CancelAfter()])
        else:
            await predict(model, stream.gen, verbose=0, callbacks=[CancelAfter()])
    assert scope.cancelled_caught
    assert stream.closed
    assert len(model.calls) == 2
    leaks.assert_none()
