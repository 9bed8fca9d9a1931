"""The batch loop shared by fit, evaluate and predict.

One coroutine drives one epoch, in one of two ways:

* **lockstep**: fire the batch-begin hook, hand the step to the compute thread,
  await it, fire the batch-end hook. Used whenever a callback may steer the
  run between batches (stop it, change the learning rate...). An in-memory
  source is sliced and checked while the step computes.
* **ahead**: when no callback listens between batches (or only observers: the
  progress bar, History), steps are queued on the compute thread, so it goes
  from one step to the next without waiting for the event loop to wake up and
  hand it the next batch. In-memory sources queue up to :data:`AHEAD` steps and
  the loop wakes once per half queue rather than once per step; streamed
  sources queue only batches already buffered, two steps at most (the one
  running and the next), so a step's end is never held back waiting for the
  network and the stream's buffer bound still holds. Each step still starts
  only if ``stop_training`` is false, no earlier step failed and the engine's
  wait has not been cancelled, so what trains is exactly what lockstep would
  train. Cancelling drops the queue: the step running finishes, and no queued
  step starts once the cancellation reaches the engine's wait (it is seen by
  the compute thread the moment it is delivered, before the engine task runs).

Either way results, hooks and errors come in batch order: an error met while
fetching batch ``i + 1`` is raised after batch ``i`` has finished, at its own
position, and an error of a step is raised at that step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

from .._exceptions import DataError
from ..callbacks import CallbackList, History, ProgbarLogger
from .epoch_iterator import EpochIterator
from .epoch_stream import DirectEpoch
from .worker_thread import Job, WorkerThread, job_result

__all__ = [
    "AHEAD",
    "Batch",
    "Phase",
    "aclose",
    "drive",
    "drive_epoch",
    "first_batch",
    "open_pipeline",
]

Batch = tuple[Any, Any, Any]
Hook = Callable[[int, dict[str, Any]], Awaitable[None]]
#: The most steps queued on the compute thread at once in "ahead" mode...
AHEAD = 64
#: ...and the most bytes of batches they may hold: big batches mean long steps,
#: which need no deep queue to keep the thread busy.
AHEAD_BYTES = 32 * 2**20
_SKIPPED = object()
_NOT_FETCHED = object()
# Callbacks that only watch batches go by; they never steer the run between them.
_OBSERVERS = (ProgbarLogger, History)


@dataclass
class Phase:
    """What one kind of epoch (train, test, predict) does with each batch.

    Attributes:
        step: ``step(x, y, sample_weight)``, run in the compute thread.
        begin: The batch-begin hook name on the CallbackList.
        end: The batch-end hook name.
        record: ``record(result, size)`` keeps a step's result (for the epoch
            means, or the predictions).
        where: Names batch ``index`` for a DataError raised by the model.
        stop: Checked after each batch (and before each queued step); true ends
            the epoch.
        astep: When set, replaces ``step``: ``await astep(x, y, sample_weight)`` on
            the event loop (a strategy's step, which uses the compute worker itself).
        agree: When set, ``await agree(has_batch)`` before every batch, whether to
            run it: ``False`` ends the epoch (participants that must end an epoch
            together; see :mod:`aiofit.engine.strategy`). Either one means lockstep.
    """

    step: Callable[[Any, Any, Any], Any]
    begin: str
    end: str
    record: Callable[[Any, int], None]
    where: Callable[[int], str]
    stop: Callable[[], bool] = lambda: False
    predicting: bool = False
    astep: Callable[[Any, Any, Any], Awaitable[Any]] | None = None
    agree: Callable[[bool], Awaitable[bool]] | None = None

    def end_logs(self, index: int, size: int, result: Any) -> dict[str, Any]:
        """The batch-end logs: the step's logs, or its predictions as ``outputs``."""
        if self.predicting:
            return {"batch": index, "size": size, "outputs": result}
        return {"batch": index, "size": size, **result}


@asynccontextmanager
async def open_pipeline(*sources: EpochIterator | None) -> AsyncIterator[WorkerThread]:
    """Opens each source (``None`` skipped), then the compute thread it yields.

    All are closed on the way out, in reverse order, however the block ends.
    """
    async with AsyncExitStack() as stack:
        for source in sources:
            if source is not None:
                await stack.enter_async_context(source)
        yield await stack.enter_async_context(WorkerThread("aiofit-compute"))


async def first_batch(batches: AsyncIterator[Batch]) -> Batch | None:
    """The next batch, or ``None`` when the epoch has no more."""
    try:
        return await batches.__anext__()
    except StopAsyncIteration:
        return None


async def aclose(batches: AsyncIterator[Batch]) -> None:
    """Close an epoch's batch iterator, even while the caller is being cancelled."""
    close = getattr(batches, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()


async def drive(
    batches: AsyncIterator[Batch],
    first: Batch | None,
    worker: WorkerThread,
    cbs: CallbackList,
    phase: Phase,
    start: int = 0,
) -> int:
    """Run ``phase.step`` on ``first`` and every later batch, numbered from ``start``
    (a resumed epoch goes on from where its backup was taken).

    Returns:
        ``start`` plus the number of batches that ran.
    """
    hooks = _Hooks(cbs, phase)
    # Prefetching a stream would hold this batch's end hook until the next batch
    # arrived, so only sources that never wait (in memory) are prefetched.
    in_memory = isinstance(batches, DirectEpoch)
    if _steered(cbs, phase) or phase.astep is not None or phase.agree is not None:
        return await _lockstep(batches, first, worker, hooks, start, prefetch=in_memory)
    return await _ahead(batches, first, worker, hooks, start)


async def drive_epoch(
    batches: AsyncIterator[Batch], worker: WorkerThread, cbs: CallbackList, phase: Phase
) -> int:
    """:func:`drive` over all of ``batches``, closed however the epoch ends.

    Returns:
        The number of batches that ran.
    """
    try:
        return await drive(batches, await first_batch(batches), worker, cbs, phase)
    finally:
        await aclose(batches)


def _steered(cbs: CallbackList, phase: Phase) -> bool:
    # Exact types: a subclass of an observer may well steer.
    steering = CallbackList([cb for cb in cbs.callbacks if type(cb) not in _OBSERVERS])
    return steering.overrides(phase.begin) or steering.overrides(phase.end)


class _Hooks:
    """A phase's batch hooks (``None`` when no callback overrides one) and what ends a batch."""

    def __init__(self, cbs: CallbackList, phase: Phase) -> None:
        self.phase = phase
        self.begin: Hook | None = getattr(cbs, phase.begin) if cbs.overrides(phase.begin) else None
        self.end: Hook | None = getattr(cbs, phase.end) if cbs.overrides(phase.end) else None

    async def batch_begin(self, index: int, size: int) -> None:
        if self.begin is not None:
            await self.begin(index, {"batch": index, "size": size})

    async def batch_end(self, index: int, size: int, result: Any) -> None:
        """Records the step's result, then fires the batch-end hook."""
        self.phase.record(result, size)
        if self.end is not None:
            await self.end(index, self.phase.end_logs(index, size, result))


async def _lockstep(
    batches: AsyncIterator[Batch], batch: Batch | None, worker: WorkerThread, hooks: _Hooks,
    start: int, *, prefetch: bool,
) -> int:  # fmt: skip
    phase, index = hooks.phase, start
    while await _proceed(phase, batch):
        assert batch is not None
        size = len(batch[0])
        await hooks.batch_begin(index, size)
        if phase.astep is None:
            result, upcoming, deferred = await _threaded_step(
                batches, batch, worker, phase, index, prefetch=prefetch
            )
        else:
            result = await _awaited_step(phase, batch, index)
            upcoming, deferred = _NOT_FETCHED, None
        await hooks.batch_end(index, size, result)
        index += 1
        if phase.stop():
            if phase.agree is None:
                break
            batch = None  # the others learn it in the agreement
            continue
        if deferred is not None:
            raise deferred
        batch = await first_batch(batches) if upcoming is _NOT_FETCHED else upcoming
    return index


async def _proceed(phase: Phase, batch: Batch | None) -> bool:
    if phase.agree is None:
        return batch is not None
    return await phase.agree(batch is not None)


async def _threaded_step(
    batches: AsyncIterator[Batch], batch: Batch, worker: WorkerThread, phase: Phase,
    index: int, *, prefetch: bool,
) -> tuple[Any, Any, Exception | None]:  # fmt: skip
    """The step in the compute thread, the next batch fetched meanwhile when ``prefetch``."""
    job = worker.submit(phase.step, *batch)
    upcoming: Any = _NOT_FETCHED
    deferred: Exception | None = None
    if prefetch:
        try:
            upcoming = await first_batch(batches)
        except Exception as exc:  # belongs to batch index + 1: raised after this one
            upcoming, deferred = None, exc
        except BaseException:
            worker.discard(job)
            raise
    if job.done:  # no suspension yet this batch: let other tasks (and cancellation) in
        await anyio.lowlevel.checkpoint()
    return await _result(worker, job, phase, index), upcoming, deferred


async def _awaited_step(phase: Phase, batch: Batch, index: int) -> Any:
    assert phase.astep is not None
    try:
        return await phase.astep(*batch)
    except DataError as exc:
        raise DataError(f"{phase.where(index)}: {exc}") from exc


async def _ahead(
    batches: AsyncIterator[Batch], batch: Batch | None, worker: WorkerThread, hooks: _Hooks,
    start: int,
) -> int:  # fmt: skip
    phase = hooks.phase
    queue = _Queue(batches, batch, worker, phase, start)
    done = start
    try:
        while (job := await queue.next_done()) is not None:
            index, size, result = job
            if result is _SKIPPED:
                return done
            # Observers only here: they may see a batch begin after its step ran.
            await hooks.batch_begin(index, size)
            await hooks.batch_end(index, size, result)
            done = index + 1
            if phase.stop():
                return done
        if queue.deferred is not None:
            raise queue.deferred
        return done
    finally:
        queue.close()


class _Queue:
    """The steps queued on the compute thread in "ahead" mode, handed back in order."""

    def __init__(
        self, batches: AsyncIterator[Batch], batch: Batch | None, worker: WorkerThread,
        phase: Phase, start: int = 0,
    ) -> None:  # fmt: skip
        self.batches, self.worker, self.phase = batches, worker, phase
        self.batch: Any = batch  # the next batch to submit, None at the end, or _NOT_FETCHED
        self.gate = _Gate(phase, worker)
        self.pending: deque[tuple[int, int, Job]] = deque()
        self.submitted = start
        # A stream's next batch only if already buffered: never wait for one with a
        # finished step's results held back (None: in memory, never waits).
        self.buffered: Callable[[], Batch | None] | None = getattr(batches, "next_nowait", None)
        self.depth = _depth(batch) if self.buffered is None else 2
        self.deferred: Exception | None = None  # raised once the batches before it are done
        self.unsuspended = 0  # results handed out since this task last let others run

    async def next_done(self) -> tuple[int, int, Any] | None:
        """``(index, size, result)`` of the next step in order, or None when all are done."""
        await self._refill()
        pending = self.pending
        if not pending:
            return None
        if not pending[0][2].done:
            # One wake-up per half queue: each costs the thread a GIL hand-off, and
            # it still has the other half to compute while this task hands out
            # results and refills.
            await self._until_done(pending[(len(pending) - 1) // 2][2])
            self.unsuspended = 0
        elif self.unsuspended >= self.depth:
            # The thread keeps ahead of this task: never run an epoch without yielding.
            await anyio.lowlevel.checkpoint()
            self.unsuspended = 0
        self.unsuspended += 1
        index, size, job = pending.popleft()
        if not job.done:
            await self._until_done(job)
        return index, size, _outcome(job, self.phase, index)

    async def _until_done(self, job: Job) -> None:
        self.gate.watched = job  # a cancelled wait for it closes the gate at once
        await self.worker.until_done(job)

    async def _refill(self) -> None:
        while len(self.pending) < self.depth:
            if self.batch is _NOT_FETCHED and not await self._fetch():
                return
            if self.batch is None:
                return
            job = self.worker.submit(self.gate.run, *self.batch)
            self.pending.append((self.submitted, len(self.batch[0]), job))
            self.submitted += 1
            self.batch = _NOT_FETCHED

    async def _fetch(self) -> bool:
        """Fetch the next batch (None at the end); False if a stream has none buffered
        while steps are pending."""
        try:
            if self.buffered is None or not self.pending:
                self.batch = await first_batch(self.batches)
                return True
            batch = self.buffered()
            if batch is None:
                return False  # nothing buffered yet: wait on the steps instead
            self.batch = batch
        except StopAsyncIteration:
            self.batch = None
        except Exception as exc:  # raised once the batches before it are done
            self.batch, self.deferred = None, exc
        return True

    def close(self) -> None:
        self.gate.closed = True  # queued steps that have not started yet never will
        for _, _, job in self.pending:
            self.worker.discard(job)


def _depth(batch: Batch | None) -> int:
    if batch is None:
        return 2
    size = sum(a.nbytes for a in batch if a is not None)
    return max(2, min(AHEAD, AHEAD_BYTES // max(size, 1)))


class _Gate:
    """Runs a queued step only if nothing has asked the epoch to end before it starts."""

    def __init__(self, phase: Phase, worker: WorkerThread) -> None:
        self.phase = phase
        self.worker = worker
        self.closed = False
        self.watched: Job | None = None  # the job the engine task waits for

    def run(self, x: Any, y: Any, sample_weight: Any) -> Any:
        watched = self.watched
        if watched is not None and self.worker.abandoned(watched):
            self.closed = True  # the engine is being cancelled: it will not wait again
        if self.closed or self.phase.stop():
            return _SKIPPED
        try:
            return self.phase.step(x, y, sample_weight)
        except BaseException:
            self.closed = True
            raise


async def _result(worker: WorkerThread, job: Job, phase: Phase, index: int) -> Any:
    await worker.until_done(job)
    return _outcome(job, phase, index)


def _outcome(job: Job, phase: Phase, index: int) -> Any:
    try:
        return job_result(job)
    except DataError as exc:
        # The model checked the batch; say which batch of the stream it was.
        raise DataError(f"{phase.where(index)}: {exc}") from exc
