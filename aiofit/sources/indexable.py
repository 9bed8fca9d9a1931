"""Indexable datasets: ``__len__`` plus ``__getitem__(i)`` or ``async def aget(i)``.

Like Keras's ``PyDataset``: item ``i`` is a whole batch. Up to ``workers`` items are
fetched at once (``aget`` calls as tasks; ``__getitem__`` calls in ``workers``
dedicated threads) and delivered in index order, however the fetches finish. The
index order is reshuffled at the start of each pass when ``shuffle`` is on, and the
dataset's ``on_epoch_end()`` (sync or async) is called at the end of each epoch.
"""

from __future__ import annotations

import inspect
from collections import deque
from typing import Any

import anyio
import numpy as np
from anyio.abc import TaskGroup

from ..engine.worker_thread import WorkerThread

__all__ = ["IndexablePass", "IndexableSource", "is_indexable"]


def is_indexable(obj: Any) -> bool:
    """True for a dataset that this module reads (``__len__`` and an item accessor)."""
    return hasattr(obj, "__len__") and (hasattr(obj, "aget") or hasattr(obj, "__getitem__"))


class IndexableSource:
    """A dataset read by index, ``workers`` fetches in flight, delivered in order.

    Args:
        dataset: has ``__len__`` (the number of batches) and ``aget(i)`` (awaited)
            or ``__getitem__(i)`` (called in a worker thread).
        shuffle: visit the indices in a new random order on each pass.
        rng: the generator used for shuffling.
        workers: how many fetches may be in flight at once.
    """

    in_memory = False
    one_shot = False

    def __init__(
        self,
        dataset: Any,
        *,
        shuffle: bool = False,
        rng: np.random.Generator | None = None,
        workers: int = 1,
    ) -> None:
        self._dataset = dataset
        self._shuffle = shuffle
        self._rng = rng if rng is not None else np.random.default_rng()
        self._workers = workers
        self._aget = getattr(dataset, "aget", None)
        self._threads: list[WorkerThread] = []
        self.num_batches: int | None = len(dataset)

    async def open_pass(self, task_group: TaskGroup | None = None) -> IndexablePass:
        """A pass over every index; fetch tasks run in ``task_group``."""
        if task_group is None:
            raise RuntimeError("an indexable source needs a task group for its fetches")
        if self._aget is None and not self._threads:
            for i in range(self._workers):
                self._threads.append(await WorkerThread(f"aiofit-fetch-{i}").__aenter__())
        length = len(self._dataset)
        self.num_batches = length
        order = self._rng.permutation(length) if self._shuffle else np.arange(length)
        return IndexablePass(self, order, task_group)

    async def fetch(self, position: int, index: int) -> Any:
        """Item ``index``: awaited via ``aget`` or read in thread ``position % workers``."""
        if self._aget is not None:
            return await self._aget(index)
        worker = self._threads[position % len(self._threads)]
        return await worker.run(self._dataset.__getitem__, index)

    @property
    def workers(self) -> int:
        """The most fetches in flight at once."""
        return self._workers

    async def on_epoch_end(self) -> None:
        """Call the dataset's ``on_epoch_end()`` if it has one (in a thread when sync)."""
        hook = getattr(self._dataset, "on_epoch_end", None)
        if hook is None:
            return
        if inspect.iscoroutinefunction(hook):
            await hook()
        elif self._threads:
            await self._threads[0].run(hook)
        else:
            result = hook()
            if inspect.isawaitable(result):
                await result

    async def aclose(self) -> None:
        """Join the fetch threads (each after its current call returns)."""
        threads, self._threads = self._threads, []
        for thread in threads:
            await thread.aclose()


class _Fetch:
    __slots__ = ("done", "error", "result", "scope", "started")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.started = False
        self.done = anyio.Event()
        self.result: Any = None
        self.error: Exception | None = None


class IndexablePass:
    """One pass over the (possibly shuffled) indices, a window of fetches ahead."""

    checked = False

    def __init__(self, source: IndexableSource, order: np.ndarray, task_group: TaskGroup) -> None:
        self._source = source
        self._order = order
        self._task_group = task_group
        self._started = 0
        self._window: deque[_Fetch] = deque()

    def skip(self, count: int) -> None:
        """Start this pass ``count`` batches in, fetching none of them (for resuming)."""
        if self._started or self._window:
            raise RuntimeError("skip() must come before the first batch of a pass")
        self._started = min(count, len(self._order))

    async def next(self, remaining: int | None = None) -> Any | None:
        """The next item in order; keeps up to ``workers`` (and ``remaining``) in flight."""
        limit = self._source.workers if remaining is None else min(self._source.workers, remaining)
        while len(self._window) < limit and self._started < len(self._order):
            self._start(self._started, int(self._order[self._started]))
            self._started += 1
        if not self._window:
            return None
        fetch = self._window[0]
        await fetch.done.wait()
        self._window.popleft()
        if fetch.error is not None:
            raise fetch.error
        return fetch.result

    def _start(self, position: int, index: int) -> None:
        fetch = _Fetch()
        self._window.append(fetch)
        self._task_group.start_soon(self._run, fetch, position, index)

    async def _run(self, fetch: _Fetch, position: int, index: int) -> None:
        fetch.started = True
        try:
            with fetch.scope:
                fetch.result = await self._source.fetch(position, index)
        except Exception as exc:  # delivered in order by next(), as itself
            fetch.error = exc
        finally:
            fetch.done.set()

    async def aclose(self) -> None:
        """Cancel the fetches still in flight and wait for them to stop."""
        window, self._window = self._window, deque()
        for fetch in window:
            fetch.scope.cancel()
        for fetch in window:
            if fetch.started:  # a task that never started (its group was cancelled) never will
                await fetch.done.wait()
