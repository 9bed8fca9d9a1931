"""Iterables of batches: async iterables, sync iterables (pulled in a thread), sequences.

A source hands out *passes*: one iteration over its data. An iterator (an object with
``__anext__``/``__next__``, such as a generator) is one-shot: its single pass is the
iterator itself, and once it ends there is no more data. Anything else is
re-iterable: each pass calls ``aiter()``/``iter()`` afresh. Whoever opens a pass
closes it (``aclose()`` for async iterators, ``close()`` for sync ones), so a
generator's ``finally`` runs when training ends, however it ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from anyio.abc import TaskGroup

from ..engine.worker_thread import WorkerThread

__all__ = [
    "AsyncIterablePass",
    "AsyncIterableSource",
    "SequenceSource",
    "SyncIterablePass",
    "SyncIterableSource",
]

_END = object()


class AsyncIterableSource:
    """Batches from an async iterable, e.g. an async generator.

    Args:
        iterable: yields ``(x, y)`` or ``(x, y, sample_weight)`` tuples.
    """

    in_memory = False
    num_batches: int | None = None

    def __init__(self, iterable: Any) -> None:
        self.iterable = iterable
        self.one_shot = hasattr(iterable, "__anext__")

    async def open_pass(self, task_group: TaskGroup | None = None) -> AsyncIterablePass:
        """The iterator itself when one-shot, else a fresh ``aiter()``."""
        iterator = self.iterable if self.one_shot else aiter(self.iterable)
        return AsyncIterablePass(iterator)

    async def on_epoch_end(self) -> None:
        """Iterables have no epoch hook."""

    async def aclose(self) -> None:
        """Nothing beyond the passes, which the epoch iterator closes."""


class AsyncIterablePass:
    """One iteration over an async iterable."""

    checked = False

    def __init__(self, iterator: AsyncIterator[Any]) -> None:
        self._iterator = iterator

    async def next(self, remaining: int | None = None) -> Any | None:
        """The next raw batch, or None when the iterator is exhausted."""
        try:
            return await anext(self._iterator)
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        """``aclose()`` the iterator if it has one (runs a generator's ``finally``)."""
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class SyncIterableSource:
    """Batches from a sync iterable, pulled in a dedicated thread.

    The thread is started on the first pass and joined by :meth:`aclose`; every
    call into user code (``iter``, ``next``, ``close``) happens in it, never on
    the event loop thread.

    Args:
        iterable: yields ``(x, y)`` or ``(x, y, sample_weight)`` tuples.
        lookahead: how many ``next()`` calls may be queued in the thread at once
            (2 keeps it pulling while the loop collects the previous batch); the
            epoch iterator counts these against ``max_queue_size``.
    """

    in_memory = False
    num_batches: int | None = None

    def __init__(self, iterable: Any, *, lookahead: int = 2) -> None:
        self.iterable = iterable
        self.one_shot = hasattr(iterable, "__next__")
        self.lookahead = lookahead
        self._worker: WorkerThread | None = None

    async def open_pass(self, task_group: TaskGroup | None = None) -> SyncIterablePass:
        """The iterator itself when one-shot, else a fresh ``iter()`` made in the thread."""
        if self._worker is None:
            self._worker = await WorkerThread("aiofit-source").__aenter__()
        if self.one_shot:
            iterator = self.iterable
        else:
            iterator = await self._worker.run(iter, self.iterable)
        return SyncIterablePass(iterator, self._worker, self.lookahead)

    async def on_epoch_end(self) -> None:
        """Iterables have no epoch hook."""

    async def aclose(self) -> None:
        """Join the thread (after the call it is running, if any, returns)."""
        if self._worker is not None:
            await self._worker.aclose()


def _next_or_end(iterator: Iterator[Any]) -> Any:
    # StopIteration must not cross the thread boundary: it would end the wrong frame.
    return next(iterator, _END)


class SyncIterablePass:
    """One iteration over a sync iterable; each ``next`` runs in the source's thread."""

    checked = False

    def __init__(self, iterator: Iterator[Any], worker: WorkerThread, lookahead: int = 1) -> None:
        self._iterator = iterator
        self._worker = worker
        self._lookahead = lookahead
        self._pending: deque[Any] = deque()

    async def next(self, remaining: int | None = None) -> Any | None:
        """The next raw batch, or None when the iterator is exhausted.

        Up to ``lookahead`` pulls are queued in the thread, but never more than the
        ``remaining`` batches the epoch still wants.
        """
        want = self._lookahead if remaining is None else min(self._lookahead, remaining)
        while len(self._pending) < want:
            self._pending.append(self._worker.submit(_next_or_end, self._iterator))
        try:
            batch = await self._worker.wait(self._pending[0])
        except Exception:
            self._pending.popleft()
            raise
        self._pending.popleft()
        if batch is _END:
            self._pending.clear()  # pulls queued behind the end find the end too
            return None
        return batch

    async def aclose(self) -> None:
        """``close()`` the iterator in the thread if it has one (a generator runs ``finally``)."""
        self._pending.clear()  # queued pulls run first; the thread serves calls in order
        close = getattr(self._iterator, "close", None)
        if close is not None:
            await self._worker.run(close)


class SequenceSource:
    """A list or tuple of batches already in memory: read directly, no thread needed."""

    in_memory = True
    one_shot = False

    def __init__(self, batches: Sequence[Any]) -> None:
        self._batches = batches
        self.num_batches: int | None = len(batches)

    async def open_pass(self, task_group: TaskGroup | None = None) -> SequencePass:
        """A pass over the batches in order."""
        return SequencePass(self._batches)

    async def on_epoch_end(self) -> None:
        """Sequences have no epoch hook."""

    async def aclose(self) -> None:
        """Nothing to release."""


class SequencePass:
    """One pass over a :class:`SequenceSource`."""

    checked = False

    def __init__(self, batches: Sequence[Any]) -> None:
        self._batches = batches
        self._next = 0

    async def next(self, remaining: int | None = None) -> Any | None:
        """The next raw batch, or None at the end."""
        if self._next >= len(self._batches):
            return None
        self._next += 1
        return self._batches[self._next - 1]

    async def aclose(self) -> None:
        """Nothing to release."""
