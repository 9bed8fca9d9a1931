"""Indexable datasets: `workers` fetches in flight, in-order delivery, epoch hooks."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import numpy as np
import pytest

from aiofit.engine.epoch_iterator import EpochIterator

pytestmark = pytest.mark.anyio


def _batch(i: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((1, 1), i, np.float32), np.zeros(1)


def _first(b: Any) -> int:
    return int(b[0][0, 0])


async def _settle() -> None:
    """Let every runnable task run (a scheduling yield, not a wait for time)."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


class Gated:
    """``aget(i)`` waits for its gate, so the test decides when each fetch finishes."""

    def __init__(self, n: int, window: int) -> None:
        self.gates = [anyio.Event() for _ in range(n)]
        self.started: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.window = window
        self.window_full = anyio.Event()

    def __len__(self) -> int:
        return len(self.gates)

    async def aget(self, i: int) -> Any:
        self.started.append(i)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight == self.window:
            self.window_full.set()
        try:
            await self.gates[i].wait()
        finally:
            self.in_flight -= 1
        return _batch(i)


async def test_up_to_workers_fetches_in_flight_delivered_in_order() -> None:
    ds = Gated(6, window=3)
    got: list[int] = []
    async with EpochIterator(ds, workers=3) as data, anyio.create_task_group() as tg:

        async def consume() -> None:
            async for b in data.epoch(0):
                got.append(_first(b))

        tg.start_soon(consume)
        await ds.window_full.wait()
        await _settle()
        assert sorted(ds.started) == [0, 1, 2]  # three at once, and not a fourth
        ds.gates[2].set()
        ds.gates[1].set()
        await _settle()
        assert got == []  # 1 and 2 are done, but 0 comes first
        assert sorted(ds.started) == [0, 1, 2]
        ds.gates[0].set()
        for gate in ds.gates:
            gate.set()
    assert got == [0, 1, 2, 3, 4, 5]
    assert ds.max_in_flight == 3


async def test_fetch_error_is_raised_in_order_even_when_it_finishes_first() -> None:
    class Broken(Exception):
        pass

    class Failing(Gated):
        async def aget(self, i: int) -> Any:
            if i == 1:
                raise Broken("index 1")
            return await super().aget(i)

    ds = Failing(4, window=1)
    got: list[int] = []
    async with EpochIterator(ds, workers=3) as data, anyio.create_task_group() as tg:

        async def collect() -> None:
            async for b in data.epoch(0):
                got.append(_first(b))

        async def consume() -> None:
            with pytest.raises(Broken, match="index 1"):
                await collect()

        tg.start_soon(consume)
        await ds.window_full.wait()
        await _settle()
        assert got == []  # the error of 1 waits for 0
        ds.gates[0].set()
    assert got == [0]


async def test_sync_getitem_runs_workers_at_once_in_threads() -> None:
    workers = 3
    barrier = threading.Barrier(workers, timeout=30)  # breaks unless 3 calls overlap
    threads: set[int] = set()

    class Files:
        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int) -> Any:
            threads.add(threading.get_ident())
            barrier.wait()
            return _batch(i)

    async with EpochIterator(Files(), workers=workers) as data:
        got = [_first(b) async for b in data.epoch(0)]
    assert got == list(range(6))
    assert len(threads) == workers
    assert threading.get_ident() not in threads
    assert [t for t in threading.enumerate() if t.name.startswith("aiofit-")] == []


async def test_steps_never_fetch_past_the_epoch_and_continue_the_pass() -> None:
    ds = Gated(10, window=0)
    for gate in ds.gates:
        gate.set()
    async with EpochIterator(ds, steps_per_epoch=3, workers=4) as data:
        assert [_first(b) async for b in data.epoch(0)] == [0, 1, 2]
        await _settle()
        assert sorted(ds.started) == [0, 1, 2]
        assert [_first(b) async for b in data.epoch(1)] == [3, 4, 5]


class Shuffled:
    def __init__(self, n: int) -> None:
        self.n = n
        self.epoch_ends: list[int] = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return _batch(i)

    def on_epoch_end(self) -> None:
        self.epoch_ends.append(threading.get_ident())


async def test_shuffle_reorders_indices_per_epoch_reproducibly() -> None:
    async def orders(seed: int) -> list[list[int]]:
        ds = Shuffled(8)
        rng = np.random.default_rng(seed)
        async with EpochIterator(ds, shuffle=True, workers=2, rng=rng) as data:
            return [[_first(b) async for b in data.epoch(e)] for e in range(3)]

    first = await orders(11)
    assert first == await orders(11)
    expected = np.random.default_rng(11)
    assert first == [expected.permutation(8).tolist() for _ in range(3)]


async def test_sync_on_epoch_end_is_called_each_epoch_in_a_worker_thread() -> None:
    ds = Shuffled(3)
    async with EpochIterator(ds) as data:
        for e in range(3):
            assert [_first(b) async for b in data.epoch(e)] == [0, 1, 2]
            assert len(ds.epoch_ends) == e + 1
    assert threading.get_ident() not in ds.epoch_ends


async def test_async_on_epoch_end_is_awaited_each_epoch() -> None:
    class Remote:
        def __init__(self) -> None:
            self.epoch_ends = 0

        def __len__(self) -> int:
            return 2

        async def aget(self, i: int) -> Any:
            return _batch(i)

        async def on_epoch_end(self) -> None:
            await anyio.lowlevel.checkpoint()
            self.epoch_ends += 1

    ds = Remote()
    async with EpochIterator(ds, steps_per_epoch=1) as data:
        for e in range(4):
            assert [_first(b) async for b in data.epoch(e)] == [e % 2]
    assert ds.epoch_ends == 4
