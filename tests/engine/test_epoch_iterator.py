"""The data pipeline: epoch boundaries, backpressure, errors in order, cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofit import DataError
from aiofit.engine.epoch_iterator import EpochIterator

pytestmark = pytest.mark.anyio


# --- helpers ----------------------------------------------------------------------------


def batch(i: int, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A batch whose x values all equal ``i``: the batch says where it came from."""
    return np.full((n, 1), i, np.float32), np.full(n, i % 3, np.float32)


def ids(batches: list[Any]) -> list[int]:
    return [int(b[0][0, 0]) for b in batches]


async def take_epoch(data: EpochIterator, epoch: int) -> list[int]:
    return ids([b async for b in data.epoch(epoch)])


async def collect_into(got: list[Any], data: EpochIterator, epoch: int = 0) -> None:
    """Append each batch of one epoch to ``got`` (kept when the epoch raises)."""
    async for b in data.epoch(epoch):
        got.append(b)


class Counter:
    """What a source produced, whether its ``finally`` ran, and in which threads."""

    def __init__(self) -> None:
        self.pulled = 0
        self.closed = False
        self.threads: set[int] = set()


async def agen(count: int | None, counter: Counter, start: int = 0) -> AsyncIterator[Any]:
    try:
        i = start
        while count is None or i < start + count:
            counter.pulled += 1
            yield batch(i)
            i += 1
    finally:
        counter.closed = True


def sgen(count: int | None, counter: Counter) -> Iterator[Any]:
    try:
        i = 0
        while count is None or i < count:
            counter.threads.add(threading.get_ident())
            counter.pulled += 1
            yield batch(i)
            i += 1
    finally:
        counter.threads.add(threading.get_ident())
        counter.closed = True


class ReIterable:
    """An async re-iterable: each ``aiter()`` is a fresh generator of ``count`` batches."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.counters: list[Counter] = []

    def __aiter__(self) -> AsyncIterator[Any]:
        self.counters.append(Counter())
        return agen(self.count, self.counters[-1], start=100 * (len(self.counters) - 1))


def pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("aiofit-")]


def running_tasks() -> int:
    """How many tasks the event loop runs right now (asyncio or trio)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        import trio

        def count(task: Any) -> int:
            return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

        return count(trio.lowlevel.current_root_task())


# --- epoch boundaries -------------------------------------------------------------------


async def test_arrays_each_epoch_is_one_pass_in_batches() -> None:
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    async with EpochIterator(x, x[:, 0] * 2, batch_size=4) as data:
        assert data.num_batches == 3
        for epoch in range(2):
            got = [b async for b in data.epoch(epoch)]
            assert [b[0][:, 0].tolist() for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
            assert [b[1].tolist() for b in got] == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]
            assert all(b[2] is None for b in got)
        assert not data.exhausted


async def test_arrays_default_batch_size_is_32() -> None:
    x = np.zeros((70, 1), np.float32)
    async with EpochIterator(x, np.zeros(70)) as data:
        sizes = [len(b[0]) async for b in data.epoch(0)]
    assert sizes == [32, 32, 6]


async def test_shuffle_with_a_seeded_rng_is_reproducible_and_differs_per_epoch() -> None:
    x = np.arange(20, dtype=np.float32).reshape(20, 1)

    async def orders(seed: int) -> list[list[float]]:
        rng = np.random.default_rng(seed)
        async with EpochIterator(x, x[:, 0], batch_size=5, shuffle=True, rng=rng) as data:
            return [
                np.concatenate([b[0][:, 0] async for b in data.epoch(e)]).tolist()
                for e in range(3)
            ]

    first, again = await orders(7), await orders(7)
    assert first == again
    expected = np.random.default_rng(7)
    assert first == [expected.permutation(20).astype(float).tolist() for _ in range(3)]
    assert first[0] != first[1]


async def test_infinite_stream_with_steps_takes_exactly_n_and_continues_live() -> None:
    counter = Counter()
    async with EpochIterator(agen(None, counter), steps_per_epoch=3, max_queue_size=10) as data:
        assert data.num_batches == 3
        assert await take_epoch(data, 0) == [0, 1, 2]
        assert counter.pulled == 3  # never read past the epoch's N, despite room in the queue
        assert await take_epoch(data, 1) == [3, 4, 5]  # the same live generator, not restarted
        assert counter.pulled == 6
        assert not data.exhausted
    assert counter.closed


async def test_one_shot_generator_without_steps_is_exhausted_after_one_epoch() -> None:
    counter = Counter()
    async with EpochIterator(agen(4, counter)) as data:
        assert data.num_batches is None
        assert await take_epoch(data, 0) == [0, 1, 2, 3]
        assert data.exhausted
        assert await take_epoch(data, 1) == []  # no silent replay
    assert counter.pulled == 4


async def test_one_shot_generator_with_steps_runs_out_mid_epoch() -> None:
    counter = Counter()
    async with EpochIterator(agen(7, counter), steps_per_epoch=3) as data:
        assert [await take_epoch(data, e) for e in range(2)] == [[0, 1, 2], [3, 4, 5]]
        assert not data.exhausted
        assert await take_epoch(data, 2) == [6]
        assert data.exhausted
        assert await take_epoch(data, 3) == []


async def test_one_shot_generator_ending_on_the_boundary_yields_an_empty_epoch() -> None:
    async with EpochIterator(agen(4, Counter()), steps_per_epoch=2) as data:
        assert [await take_epoch(data, e) for e in range(2)] == [[0, 1], [2, 3]]
        assert not data.exhausted  # it has not said so yet
        assert await take_epoch(data, 2) == []
        assert data.exhausted


async def test_reiterable_restarts_each_epoch() -> None:
    source = ReIterable(3)
    async with EpochIterator(source) as data:
        assert [await take_epoch(data, e) for e in range(3)] == [
            [0, 1, 2], [100, 101, 102], [200, 201, 202]]  # fmt: skip
        assert data.num_batches == 3  # learned from the first complete pass, as Keras does
    assert len(source.counters) == 3
    assert all(c.closed for c in source.counters)
    assert not data.exhausted


async def test_reiterable_with_steps_continues_the_pass_then_restarts_on_the_boundary() -> None:
    source = ReIterable(4)
    async with EpochIterator(source, steps_per_epoch=2) as data:
        got = [await take_epoch(data, e) for e in range(3)]
    assert got == [[0, 1], [2, 3], [100, 101]]
    assert len(source.counters) == 2


async def test_reiterable_running_out_mid_epoch_ends_it_short_with_a_warning() -> None:
    source = ReIterable(5)
    async with EpochIterator(source, steps_per_epoch=3) as data:
        assert await take_epoch(data, 0) == [0, 1, 2]
        with pytest.warns(UserWarning, match="ran out of data.*steps_per_epoch=3"):
            assert await take_epoch(data, 1) == [3, 4]
        assert await take_epoch(data, 2) == [100, 101, 102]
        assert not data.exhausted


async def test_arrays_with_steps_follow_keras_across_passes() -> None:
    x = np.arange(10, dtype=np.float32).reshape(10, 1)  # 5 batches of 2 per pass
    async with EpochIterator(x, x[:, 0], batch_size=2, steps_per_epoch=2) as data:
        assert data.num_batches == 2

        async def firsts(e: int) -> list[float]:
            return [float(b[0][0, 0]) async for b in data.epoch(e)]

        assert [await firsts(0), await firsts(1)] == [[0, 2], [4, 6]]
        with pytest.warns(UserWarning, match="ran out of data"):
            assert await firsts(2) == [8]  # the pass ends mid-epoch: short, as in Keras
        assert [await firsts(3), await firsts(4)] == [[0, 2], [4, 6]]


async def test_empty_reiterable_is_exhausted_not_an_endless_loop() -> None:
    async with EpochIterator(ReIterable(0), steps_per_epoch=2) as data:
        assert await take_epoch(data, 0) == []
        assert data.exhausted


async def test_list_of_batches_is_read_in_order_each_epoch() -> None:
    async with EpochIterator([batch(i) for i in range(3)]) as data:
        assert data.num_batches == 3
        assert [await take_epoch(data, e) for e in range(2)] == [[0, 1, 2], [0, 1, 2]]


async def test_abandoned_epoch_then_next_epoch_starts_a_fresh_pass() -> None:
    source = ReIterable(4)
    async with EpochIterator(source) as data:
        first = data.epoch(0)
        assert ids([await first.__anext__()]) == [0]
        assert await take_epoch(data, 1) == [100, 101, 102, 103]
    assert all(c.closed for c in source.counters)


# --- sync iterables ----------------------------------------------------------------------


async def test_sync_generator_is_pulled_and_closed_off_the_loop_thread() -> None:
    counter = Counter()
    async with EpochIterator(sgen(None, counter), steps_per_epoch=4) as data:
        assert await take_epoch(data, 0) == [0, 1, 2, 3]
        assert counter.pulled == 4
        assert len(pipeline_threads()) == 1
    assert counter.closed
    assert counter.threads
    assert threading.get_ident() not in counter.threads
    assert pipeline_threads() == []


async def test_sync_reiterable_gets_a_fresh_iterator_per_epoch() -> None:
    async with EpochIterator(range(0)) as data:  # an empty re-iterable runs out at once
        assert await take_epoch(data, 0) == []
        assert data.exhausted

    class Batches:
        def __iter__(self) -> Iterator[Any]:
            return iter([batch(0), batch(1)])

    async with EpochIterator(Batches()) as data:
        assert [await take_epoch(data, e) for e in range(2)] == [[0, 1], [0, 1]]


# --- checking and weights ---------------------------------------------------------------


async def test_class_weight_is_folded_into_each_batchs_weights() -> None:
    def source() -> Iterator[Any]:
        yield np.zeros((3, 1)), np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0])
        yield np.zeros((2, 1)), np.array([[0, 1], [1, 0]])  # one-hot targets: argmax

    cw = {0: 0.5, 1: 4.0}
    async with EpochIterator(source(), class_weight=cw) as data:
        got = [b async for b in data.epoch(0)]
    np.testing.assert_allclose(got[0][2], [0.5 * 1.0, 4.0 * 2.0, 1.0 * 3.0])
    np.testing.assert_allclose(got[1][2], [4.0, 0.5])


async def test_class_weight_with_arrays() -> None:
    x = np.zeros((4, 1))
    y = np.array([1, 0, 1, 0])
    async with EpochIterator(x, y, batch_size=4, class_weight={1: 3.0}) as data:
        (_, _, sw), *_ = [b async for b in data.epoch(0)]
    np.testing.assert_allclose(sw, [3.0, 1.0, 3.0, 1.0])


async def test_malformed_batch_raises_data_error_at_its_position() -> None:
    async def source() -> AsyncIterator[Any]:
        yield batch(0)
        yield batch(1)
        yield np.zeros((2, 1)), np.zeros(3)  # mismatched lengths

    got: list[Any] = []
    async with EpochIterator(source()) as data:
        with pytest.raises(DataError, match=r"^batch 2 of epoch 1: x and y have different"):
            await collect_into(got, data)
    assert ids(got) == [0, 1]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (np.zeros((2, 1)), "expected a tuple"),
        ((np.array([[np.nan], [1.0]]), np.zeros(2)), "non-finite"),
        ((np.array([["a"], ["b"]]), np.zeros(2)), "numeric"),
        ((np.zeros((0, 1)), np.zeros(0)), "empty"),
    ],
)
async def test_malformed_batches_name_the_batch_and_problem(bad: Any, problem: str) -> None:
    async with EpochIterator([batch(0), bad]) as data:
        with pytest.raises(DataError, match=f"^batch 1 of epoch 1: .*{problem}"):
            _ = [b async for b in data.epoch(0)]


async def test_malformed_arrays_are_rejected_up_front() -> None:
    x = np.ones((4, 2))
    x[3, 1] = np.inf
    with pytest.raises(DataError, match=r"non-finite.*\(3, 1\)"):
        EpochIterator(x, np.zeros(4))


async def test_predict_role_accepts_bare_x_and_one_tuples() -> None:
    source = [np.ones((2, 1)), (np.full((1, 1), 2.0),), (np.full((1, 1), 3.0), np.zeros(1))]
    async with EpochIterator(source, role="predict") as data:
        got = [b async for b in data.epoch(0)]
    assert [b[0][0, 0] for b in got] == [1.0, 2.0, 3.0]
    assert got[0][1] is None
    assert got[1][1] is None
    assert got[2][1] is not None
    async with EpochIterator(np.ones((3, 1)), role="predict", batch_size=2) as data:
        assert [len(b[0]) async for b in data.epoch(0)] == [2, 1]


async def test_bare_x_outside_predict_is_a_data_error() -> None:
    async with EpochIterator([np.ones((2, 1))]) as data:
        with pytest.raises(DataError, match="batch 0 of epoch 1: expected a tuple"):
            _ = [b async for b in data.epoch(0)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer. Received: batch_size=0"),
        ({"steps_per_epoch": -1}, "Received: steps_per_epoch=-1"),
        ({"max_queue_size": 0}, "Received: max_queue_size=0"),
        ({"workers": 1.5}, "Received: workers=1.5"),
        ({"role": "fit"}, "Received: role='fit'"),
    ],
)
async def test_bad_options_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        EpochIterator(np.zeros((2, 1)), np.zeros(2), **kwargs)


async def test_bad_sources_are_rejected() -> None:
    with pytest.raises(TypeError, match="Received: x of type int"):
        EpochIterator(3)
    with pytest.raises(ValueError, match="`y` can only be passed with array x"):
        EpochIterator(agen(1, Counter()), np.zeros(2))
    with pytest.raises(ValueError, match="`sample_weight` can only be passed with array x"):
        EpochIterator(iter([batch(0)]), sample_weight=np.ones(2))
    with pytest.raises(ValueError, match="y is required"):
        EpochIterator(np.zeros((2, 1)))
    with pytest.raises(RuntimeError, match="async with"):
        EpochIterator([batch(0)]).epoch(0)


# --- errors from sources ----------------------------------------------------------------


class SourceFailure(Exception):
    pass


async def test_source_error_arrives_in_order_as_itself() -> None:
    boom = SourceFailure("disk on fire")

    async def source() -> AsyncIterator[Any]:
        yield batch(0)
        yield batch(1)
        raise boom

    got: list[Any] = []
    async with EpochIterator(source(), max_queue_size=5) as data:
        with pytest.raises(SourceFailure) as info:
            await collect_into(got, data)
    assert info.value is boom
    assert ids(got) == [0, 1]


async def test_sync_source_error_arrives_in_order_as_itself() -> None:
    def source() -> Iterator[Any]:
        yield batch(0)
        raise KeyError("missing shard")

    got: list[Any] = []
    async with EpochIterator(source()) as data:
        with pytest.raises(KeyError, match="missing shard"):
            await collect_into(got, data)
    assert ids(got) == [0]
    assert pipeline_threads() == []


async def test_error_in_the_body_propagates_as_itself_not_a_group() -> None:
    counter = Counter()

    async def failing_engine() -> None:
        async with EpochIterator(agen(None, counter), steps_per_epoch=5) as data:
            await data.epoch(0).__anext__()
            raise SourceFailure("engine")

    with pytest.raises(SourceFailure, match="engine"):
        await failing_engine()
    assert counter.closed


# --- backpressure -----------------------------------------------------------------------


@pytest.mark.parametrize("queue", [1, 3])
async def test_fast_producer_is_never_more_than_max_queue_size_ahead(queue: int) -> None:
    counter = Counter()
    consumed = 0
    worst = 0
    async with EpochIterator(agen(20, counter), max_queue_size=queue) as data:
        async for _ in data.epoch(0):
            consumed += 1
            for _ in range(5):  # give the producer every chance to run ahead
                await anyio.lowlevel.checkpoint()
            worst = max(worst, counter.pulled - consumed)
        stats = data.statistics()
    assert worst == queue  # it did fill the queue, and no further
    assert stats.max_ahead == queue
    assert (stats.produced, stats.consumed, stats.ahead) == (20, 20, 0)


@pytest.mark.parametrize("queue", [1, 2, 4])
async def test_sync_source_with_lookahead_stays_within_max_queue_size(queue: int) -> None:
    counter = Counter()
    seen: list[int] = []
    async with EpochIterator(sgen(40, counter), max_queue_size=queue) as data:
        consumed = 0
        async for _ in data.epoch(0):
            consumed += 1
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            seen.append(counter.pulled - consumed)  # the thread may be pulling right now
        stats = data.statistics()
    assert max(seen) <= queue
    assert stats.max_ahead <= queue
    assert (stats.produced, stats.consumed, counter.pulled) == (40, 40, 40)


async def test_statistics_for_direct_sources_count_every_batch() -> None:
    async with EpochIterator(np.zeros((5, 1)), np.zeros(5), batch_size=2) as data:
        _ = [b async for b in data.epoch(0)]
        stats = data.statistics()
    assert (stats.produced, stats.consumed, stats.max_ahead) == (3, 3, 1)


# --- cancellation -----------------------------------------------------------------------


async def _cancel_while(make: Any, stage: str) -> None:
    """Run an epoch and cancel it at ``stage``; then nothing may be left running."""
    reached = anyio.Event()
    with anyio.CancelScope() as scope:
        async with make() as data:
            if stage == "before-first-batch":
                scope.cancel()
            batches = data.epoch(0)
            async for _ in batches:
                if stage == "mid-epoch":
                    scope.cancel()
                    reached.set()
                await anyio.lowlevel.checkpoint()
            if stage == "between-epochs":
                scope.cancel()
            await take_epoch(data, 1)
    assert scope.cancelled_caught
    if stage == "mid-epoch":
        assert reached.is_set()


@pytest.mark.parametrize("stage", ["before-first-batch", "mid-epoch", "between-epochs"])
@pytest.mark.parametrize("kind", ["async", "sync", "indexable-async", "indexable-sync"])
async def test_cancellation_leaves_nothing_running(kind: str, stage: str) -> None:
    counter = Counter()

    class Dataset:
        def __len__(self) -> int:
            return 50

        def __getitem__(self, i: int) -> Any:
            return batch(i)

    class AsyncDataset(Dataset):
        async def aget(self, i: int) -> Any:
            await anyio.lowlevel.checkpoint()
            return batch(i)

    def make() -> EpochIterator:
        source: Any = {
            "async": lambda: agen(None, counter),
            "sync": lambda: sgen(None, counter),
            "indexable-async": AsyncDataset,
            "indexable-sync": Dataset,
        }[kind]()
        return EpochIterator(source, steps_per_epoch=30, max_queue_size=3, workers=2)

    tasks_before = running_tasks()
    await _cancel_while(make, stage)
    assert running_tasks() == tasks_before
    assert pipeline_threads() == []
    if kind in ("async", "sync") and counter.pulled:
        assert counter.closed  # the generator's finally ran: aclose()/close() was called


async def test_cancelling_a_blocked_sync_source_waits_for_it_then_joins_the_thread() -> None:
    started, release = threading.Event(), threading.Event()
    counter = Counter()

    def slow() -> Iterator[Any]:
        try:
            yield batch(0)
            started.set()
            release.wait()
            yield batch(1)
        finally:
            counter.closed = True

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope:
            async with EpochIterator(slow()) as data:
                batches = data.epoch(0)
                await batches.__anext__()
                await anyio.to_thread.run_sync(started.wait)
                scope.cancel()
                # The thread is inside next(): leaving must wait for it, not abandon it.
                tg.start_soon(anyio.to_thread.run_sync, release.set)
                await batches.__anext__()
    assert counter.closed
    assert pipeline_threads() == []


async def test_async_generator_is_aclosed_when_training_stops_early() -> None:
    counter = Counter()
    async with EpochIterator(agen(None, counter), steps_per_epoch=10) as data:
        async for _ in data.epoch(0):
            break
    assert counter.closed


@pytest.mark.parametrize("kind", ["async", "indexable"])
async def test_cancelling_while_the_source_awaits_closes_it(kind: str) -> None:
    waiting, finished = anyio.Event(), []

    async def stalled() -> AsyncIterator[Any]:
        try:
            yield batch(0)
            waiting.set()
            await anyio.Event().wait()  # a network read that never answers
            yield batch(1)
        finally:
            finished.append(True)

    class Stalled:
        def __len__(self) -> int:
            return 3

        async def aget(self, i: int) -> Any:
            if i == 0:
                return batch(0)
            try:
                waiting.set()
                await anyio.Event().wait()
            finally:
                finished.append(True)

    tasks_before = running_tasks()
    with anyio.CancelScope() as scope:
        async with EpochIterator(stalled() if kind == "async" else Stalled()) as data:
            batches = data.epoch(0)
            assert ids([await batches.__anext__()]) == [0]
            await waiting.wait()
            scope.cancel()
            await batches.__anext__()
    assert scope.cancelled_caught
    assert finished == [True]  # the stalled read was cancelled and cleaned up
    assert running_tasks() == tasks_before


@settings(max_examples=30, deadline=None)
@given(
    count=st.integers(0, 12),
    steps=st.one_of(st.none(), st.integers(1, 5)),
    queue=st.integers(1, 4),
    epochs=st.integers(1, 6),
    sync=st.booleans(),
)
def test_a_one_shot_stream_is_never_replayed_nor_skipped(
    count: int, steps: int | None, queue: int, epochs: int, sync: bool
) -> None:
    """Whatever the sizes, the epochs partition a prefix of the stream, in order."""

    async def run() -> tuple[list[list[int]], bool]:
        counter = Counter()
        source = sgen(count, counter) if sync else agen(count, counter)
        async with EpochIterator(source, steps_per_epoch=steps, max_queue_size=queue) as data:
            got = [await take_epoch(data, e) for e in range(epochs)]
            return got, data.exhausted

    got, exhausted = anyio.run(run)
    flat = [i for epoch in got for i in epoch]
    assert flat == list(range(len(flat)))
    if steps is None:
        assert got[0] == list(range(count))
        assert all(epoch == [] for epoch in got[1:])
    else:
        assert all(len(epoch) <= steps for epoch in got)
        assert len(flat) == min(count, steps * epochs)
        full = [epoch for epoch in got if epoch]
        assert all(len(epoch) == steps for epoch in full[:-1])
    assert exhausted == (steps is None or count < steps * epochs)
