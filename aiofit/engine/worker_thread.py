"""A dedicated thread that runs blocking calls for the event loop, one at a time.

Why not ``anyio.to_thread.run_sync``: its pooled threads outlive the call (they idle
for a while before exiting), so "no thread left behind" cannot be checked, and each
call pays for a pool hand-off. A :class:`WorkerThread` is owned by an ``async with``
block: the thread starts on entry and is joined on exit, and the loop is woken by the
cheapest thread-safe primitive of the running backend.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import anyio

__all__ = ["WorkerThread"]

T = TypeVar("T")
_STOP = object()


def _loop_waker() -> Callable[[Callable[[], object]], object]:
    """Return a function that schedules a callback on the running loop from any thread."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: the only other anyio backend is trio
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    return loop.call_soon_threadsafe


class _Call:
    __slots__ = ("args", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.done = anyio.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class WorkerThread:
    """One thread, owned by an ``async with`` block, running calls in submission order.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with WorkerThread("reader") as worker:
        ...         line = await worker.run(sys.stdin.readline)

    A call cannot be interrupted once the thread has started it: cancelling
    :meth:`run` returns at once, and leaving the block waits (shielded) for the
    call in progress to return before joining the thread.
    """

    def __init__(self, name: str = "aiofit-worker") -> None:
        self._name = name
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = anyio.Event()

    @property
    def ident(self) -> int | None:
        """The thread's identifier once started (``threading.get_ident()`` inside it)."""
        return None if self._thread is None else self._thread.ident

    async def __aenter__(self) -> WorkerThread:
        wake = _loop_waker()
        self._thread = threading.Thread(
            target=self._serve, args=(wake,), name=self._name, daemon=True
        )
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
        """Stop the thread after its current call and join it (idempotent)."""
        if self._thread is None:
            return
        thread, self._thread = self._thread, None
        self._requests.put(_STOP)
        with anyio.CancelScope(shield=True):
            await self._stopped.wait()
        thread.join()  # the thread has signalled its last act: this returns at once

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the thread and return its result or raise its error."""
        result: T = await self.wait(self.submit(fn, *args))
        return result

    def submit(self, fn: Callable[..., Any], *args: Any) -> _Call:
        """Queue ``fn(*args)`` behind the calls already queued; :meth:`wait` for it later.

        Queueing the next call before the current one is collected keeps the thread
        busy instead of idle for a round trip through the event loop.
        """
        if self._thread is None:
            raise RuntimeError(f"WorkerThread {self._name!r} is not running")
        call = _Call(fn, args)
        self._requests.put(call)
        return call

    @staticmethod
    async def wait(call: _Call) -> Any:
        """The result of a submitted call, or its error raised as itself."""
        await call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _serve(self, wake: Callable[[Callable[[], object]], object]) -> None:
        while True:
            call = self._requests.get()
            if call is _STOP:
                break
            try:
                call.result = call.fn(*call.args)
            except BaseException as exc:  # delivered to the awaiting task, re-raised there
                call.error = exc
            if not _try_wake(wake, call.done.set):
                return
            del call  # drop references to the result before blocking again
        _try_wake(wake, self._stopped.set)


def _try_wake(
    wake: Callable[[Callable[[], object]], object], callback: Callable[[], object]
) -> bool:
    try:
        wake(callback)
    except RuntimeError:  # the event loop is gone: its owner never closed us; just stop
        return False
    return True
