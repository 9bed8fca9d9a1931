"""A worker thread owned by an ``async with`` block: the engine's compute thread, and
the thread that pulls sync iterables and indexable datasets.

The model's steps are synchronous numpy work; running them on the event loop
would stall every other task for the length of a step. ``anyio.to_thread``
pays a pool hand-off per call and leaves idle pool threads behind, so the
engine keeps a single dedicated thread for the whole call instead, fed by a
:class:`queue.SimpleQueue`.

Submitting and waiting are separate (:meth:`WorkerThread.submit`, then
:meth:`WorkerThread.wait`), so the engine can queue several steps or fetch
the next batch while a step computes. A finished step stores its outcome on
its job; the thread wakes the event loop only if a task is already waiting for
that job, with the cheapest thread-safe primitive of the backend:
``call_soon_threadsafe`` resolving a future on asyncio (and uvloop),
``TrioToken.run_sync_soon`` rescheduling the task on trio. Every wake-up costs
a thread switch (and a GIL hand-off), so not waking a loop that is not waiting
is what keeps the engine's overhead per batch small.

The thread runs at a lower scheduling priority than the event loop's thread
(``nice`` + :data:`NICENESS`, on Linux, where a thread's nice value is its
own): when every core is busy computing, as with two MPI ranks on two cores,
the loop's thread still gets a core as soon as it wakes instead of queueing
behind a step for a scheduler slice (measured: loop-lag p99 5 ms -> under 1 ms,
same throughput). A thread that nobody else competes with runs at full speed
whatever its nice value. Set ``AIOFIT_WORKER_NICENESS=0`` to keep the priority.

A step cannot be interrupted half-way (it would leave the weights half
updated), so leaving the worker, even by cancellation, waits for the step in
flight to finish and for the thread to exit: nothing is left running.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import anyio

__all__ = ["WorkerThread", "Job", "job_result"]

# A job's result travels as (value, exception); exactly one is meaningful.
_Outcome = tuple[Any, BaseException | None]
_STOP = object()


def niceness_from(environ: Mapping[str, str]) -> int:
    """``AIOFIT_WORKER_NICENESS`` from ``environ`` (default 10), or ValueError."""
    text = environ.get("AIOFIT_WORKER_NICENESS", "10")
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"AIOFIT_WORKER_NICENESS must be a whole number of nice levels (0 keeps the "
            f"event loop's priority). Received: {text!r}"
        ) from None


#: How many nice levels below its creator a worker thread runs (Linux only).
NICENESS = niceness_from(os.environ)


class Job:
    """One submitted call: its outcome once finished, and who waits for it."""

    __slots__ = ("aborted", "args", "fn", "outcome", "waiter")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn: Callable[..., Any] | None = fn
        self.args: tuple[Any, ...] = args
        self.outcome: _Outcome | None = None
        self.waiter: Any = None
        self.aborted = False  # trio: a wait for it was cancelled

    @property
    def done(self) -> bool:
        """Whether the call has finished (its outcome is ready)."""
        return self.outcome is not None


class WorkerThread:
    """Run synchronous callables one at a time, in order, in a thread owned by this object.

    Example:
        >>> async with WorkerThread() as worker:
        ...     job = worker.submit(model.train_on_batch, x, y)
        ...     batch = await next_batch()          # overlaps with the step
        ...     logs = await worker.wait(job)

    Jobs never run concurrently, which is what :class:`aiofit.Trainable`
    promises its models.
    """

    def __init__(self, name: str = "aiofit-worker") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._backend: _Backend | None = None

    @property
    def ident(self) -> int | None:
        """The thread's identifier once started (``threading.get_ident()`` inside it)."""
        return None if self._thread is None else self._thread.ident

    async def __aenter__(self) -> WorkerThread:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} can only be entered once")
        self._backend = _current_backend()
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the thread after the jobs already submitted; idempotent."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        stop = Job(_stop, ())
        self._jobs.put(stop)
        with anyio.CancelScope(shield=True):
            # Finished only after every earlier job, so the join returns at once.
            await self.wait(stop)
        thread.join()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Job:
        """Queue ``fn(*args)`` for the thread; returns the job to :meth:`wait` on."""
        if self._backend is None or self._thread is None or not self._thread.is_alive():
            raise RuntimeError(f"{self._name} is not running; use it as `async with`")
        job = Job(fn, args)
        self._jobs.put(job)
        return job

    async def wait(self, job: Job) -> Any:
        """Return (or raise) the outcome of a submitted job, suspending until it is done."""
        await self.until_done(job)
        return job_result(job)

    async def until_done(self, job: Job) -> None:
        """Suspend until ``job`` has finished (and so has every job before it)."""
        if job.outcome is None:
            assert self._backend is not None
            with self._lock:
                if job.outcome is None:
                    job.waiter = self._backend.waiter()
            if job.waiter is not None:
                await self._backend.sleep(job)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``submit`` then ``wait``: run ``fn(*args)`` in the thread."""
        return await self.wait(self.submit(fn, *args))

    def abandoned(self, job: Job) -> bool:
        """Whether a task's wait for ``job`` has been cancelled; safe to ask from the
        worker thread, and true from the moment the cancellation is delivered (before
        the waiting task runs again), so queued work can stop at once."""
        assert self._backend is not None
        return self._backend.abandoned(job)

    def discard(self, job: Job) -> None:
        """Forget a job nobody will wait for any more."""
        if self._backend is not None:
            self._backend.forget(job)

    def _serve(self) -> None:
        backend = self._backend
        assert backend is not None
        _lower_priority(NICENESS)
        while True:
            job = self._jobs.get()
            fn, args = job.fn, job.args
            job.fn, job.args = None, ()  # drop the batch once it has been used
            try:
                outcome: _Outcome = (fn(*args), None)  # type: ignore[misc]
            except BaseException as exc:  # delivered to the awaiting task, re-raised there
                outcome = (None, exc)
            with self._lock:
                job.outcome = outcome
                waiter = job.waiter
            if waiter is not None:
                backend.wake(job, waiter)
            if fn is _stop:
                return
            del outcome, fn, args, job, waiter


def _lower_priority(levels: int) -> None:
    """Raise the calling thread's nice value by ``levels`` (no-op off Linux)."""
    # Only Linux gives each thread its own nice value (PRIO_PROCESS with a thread
    # id); elsewhere the call would renice the whole process, or fail.
    if levels <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + levels)
    except OSError:  # e.g. a sandbox that forbids it: run at the creator's priority
        pass


def job_result(job: Job) -> Any:
    """The value a finished job returned, or raise what it raised."""
    value, exc = job.outcome  # type: ignore[misc]
    if exc is not None:
        raise exc
    return value


def _stop() -> None:
    return None


class _Backend:
    def waiter(self) -> Any:
        """A token for the current task to sleep on (made on the event loop thread)."""
        raise NotImplementedError

    async def sleep(self, job: Job) -> None:
        raise NotImplementedError

    def wake(self, job: Job, waiter: Any) -> None:
        """Called from the worker thread once ``job.outcome`` is set."""
        raise NotImplementedError

    def forget(self, job: Job) -> None:
        raise NotImplementedError

    def abandoned(self, job: Job) -> bool:
        raise NotImplementedError


class _AsyncioBackend(_Backend):
    def __init__(self) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()

    def waiter(self) -> Any:
        return self._loop.create_future()

    async def sleep(self, job: Job) -> None:
        await job.waiter

    def wake(self, job: Job, waiter: Any) -> None:
        self._loop.call_soon_threadsafe(_settle, waiter)

    def forget(self, job: Job) -> None:
        if job.waiter is not None:
            job.waiter.cancel()

    def abandoned(self, job: Job) -> bool:
        # Cancelling a task cancels the future it awaits there and then.
        waiter = job.waiter
        return waiter is not None and waiter.cancelled()


def _settle(future: Any) -> None:
    if not future.done():  # a cancelled waiter wants nothing
        future.set_result(None)


class _TrioBackend(_Backend):
    def __init__(self) -> None:
        import outcome
        import trio

        self._lowlevel = trio.lowlevel
        self._token = trio.lowlevel.current_trio_token()
        self._value = outcome.Value

    def waiter(self) -> Any:
        return self._lowlevel.current_task()

    async def sleep(self, job: Job) -> None:
        def abort(_raise_cancel: Any) -> Any:
            # Called by trio as the cancellation is delivered, on the trio thread.
            job.waiter = None  # like _settle: no race
            job.aborted = True
            return self._lowlevel.Abort.SUCCEEDED

        await self._lowlevel.wait_task_rescheduled(abort)

    def wake(self, job: Job, waiter: Any) -> None:
        self._token.run_sync_soon(self._settle, job, waiter)

    def _settle(self, job: Job, task: Any) -> None:
        if job.waiter is task:
            job.waiter = None
            self._lowlevel.reschedule(task, self._value(None))

    def forget(self, job: Job) -> None:
        job.waiter = None

    def abandoned(self, job: Job) -> bool:
        return job.aborted


def _current_backend() -> _Backend:
    # Not sniffio: anyio no longer depends on it, and aiofit's base install is
    # numpy + anyio. A running asyncio loop means asyncio (or uvloop); otherwise
    # the only other backend anyio runs on is trio.
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return _AsyncioBackend()
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            return _TrioBackend()
    raise RuntimeError("aiofit runs inside an asyncio (or uvloop) or trio event loop; "
                       "no running loop was found")
