"""Iterable sources and the worker thread that keeps sync ones off the event loop."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import numpy as np
import pytest

from aiofit.engine.worker_thread import WorkerThread
from aiofit.sources.iterables import AsyncIterableSource, SequenceSource, SyncIterableSource

pytestmark = pytest.mark.anyio


def _batch(i: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((1, 1), i, np.float32), np.zeros(1)


def _ids(batches: list[Any]) -> list[int]:
    return [int(b[0][0, 0]) for b in batches]


async def _drain(p: Any) -> list[Any]:
    out = []
    while (b := await p.next()) is not None:
        out.append(b)
    return out


def _pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("aiofit-")]


class _Record:
    def __init__(self) -> None:
        self.closed = False
        self.threads: set[int] = set()


async def test_async_generator_is_one_shot_and_its_pass_aclose_runs_finally() -> None:
    record = _Record()

    async def gen() -> AsyncIterator[Any]:
        try:
            for i in range(5):
                yield _batch(i)
        finally:
            record.closed = True

    source = AsyncIterableSource(gen())
    assert source.one_shot
    assert source.num_batches is None
    p = await source.open_pass()
    assert _ids([await p.next(), await p.next()]) == [0, 1]
    assert not record.closed
    await p.aclose()
    assert record.closed


async def test_async_reiterable_gets_a_fresh_iterator_per_pass() -> None:
    class Twice:
        def __aiter__(self) -> AsyncIterator[Any]:
            async def gen() -> AsyncIterator[Any]:
                for i in range(2):
                    yield _batch(i)

            return gen()

    source = AsyncIterableSource(Twice())
    assert not source.one_shot
    assert [_ids(await _drain(await source.open_pass())) for _ in range(2)] == [[0, 1], [0, 1]]


async def test_sync_source_runs_iter_next_and_close_in_its_own_thread() -> None:
    record = _Record()

    class Numbers:
        def __iter__(self) -> Iterator[Any]:
            record.threads.add(threading.get_ident())
            return self._gen()

        def _gen(self) -> Iterator[Any]:
            try:
                for i in range(3):
                    record.threads.add(threading.get_ident())
                    yield _batch(i)
            finally:
                record.threads.add(threading.get_ident())
                record.closed = True

    source = SyncIterableSource(Numbers())
    assert not source.one_shot
    p = await source.open_pass()
    assert _ids([await p.next()]) == [0]
    await p.aclose()
    assert record.closed
    assert len(record.threads) == 1
    assert threading.get_ident() not in record.threads
    assert len(_pipeline_threads()) == 1
    await source.aclose()
    assert _pipeline_threads() == []


async def test_sync_source_errors_arrive_as_themselves() -> None:
    class Broken(Exception):
        pass

    def gen() -> Iterator[Any]:
        yield _batch(0)
        raise Broken("bad shard")

    source = SyncIterableSource(gen())
    assert source.one_shot
    try:
        p = await source.open_pass()
        await p.next()
        with pytest.raises(Broken, match="bad shard"):
            await p.next()
        assert await p.next() is None  # a generator that raised is over
    finally:
        await source.aclose()


async def test_sequence_source_reads_in_order_without_a_thread() -> None:
    source = SequenceSource([_batch(i) for i in range(3)])
    assert source.in_memory
    assert source.num_batches == 3
    assert _ids(await _drain(await source.open_pass())) == [0, 1, 2]
    assert _pipeline_threads() == []


async def test_worker_thread_runs_calls_in_order_and_reraises_errors() -> None:
    async with WorkerThread("aiofit-test") as worker:
        assert await worker.run(lambda a, b: a * b, 6, 7) == 42
        assert await worker.run(threading.get_ident) == worker.ident != threading.get_ident()
        with pytest.raises(ZeroDivisionError):
            await worker.run(lambda: 1 / 0)
    assert _pipeline_threads() == []
    with pytest.raises(RuntimeError, match="not running"):
        await worker.run(int)


async def test_cancelled_call_returns_at_once_and_aclose_waits_for_it() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def blocking() -> None:
        started.set()
        release.wait()
        finished.append(True)

    worker = await WorkerThread("aiofit-test").__aenter__()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_once_started() -> None:
                await anyio.to_thread.run_sync(started.wait)
                scope.cancel()

            tg.start_soon(cancel_once_started)
            await worker.run(blocking)
    assert scope.cancelled_caught
    assert finished == []
    release.set()
    await worker.aclose()
    assert finished == [True]
    assert _pipeline_threads() == []
