"""The two ways one epoch reaches the engine: through a bounded buffer, or directly.

A :class:`StreamEpoch` runs a producer task (in the epoch iterator's task group) that
reads the source ahead of the engine into a memory object stream. Errors travel the
same stream, in order, and are raised by ``__anext__`` at their batch's position as
themselves. The producer takes a credit *before* reading the next batch from the
source, and the engine gives it back when it receives a batch, so the source is never
more than ``max_queue_size`` batches ahead of the engine (counting the one the
producer holds and the one in hand-over, which a stream bound alone would not).

A :class:`DirectEpoch` serves in-memory sources (arrays, lists of batches), where
reading ahead buys nothing and a task hop per batch would cost the engine's budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

if TYPE_CHECKING:
    from .epoch_iterator import EpochIterator

__all__ = ["DirectEpoch", "EpochCursor", "StreamEpoch"]

Batch = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


@dataclass
class EpochCursor:
    """Where one epoch stands: its index and how many batches it has taken."""

    epoch_index: int
    got: int = 0
    started: bool = False


@dataclass(frozen=True)
class _Failure:
    error: Exception


class StreamEpoch:
    """One epoch's batches, read ahead by a producer task into a bounded stream."""

    def __init__(
        self,
        iterator: EpochIterator,
        cursor: EpochCursor,
        task_group: TaskGroup,
        previous: anyio.Event | None,
    ) -> None:
        self._iterator = iterator
        self._cursor = cursor
        send, self._receive = anyio.create_memory_object_stream[Any](iterator.max_queue_size)
        # A source that queues pulls ahead (a sync iterable's thread) spends its
        # lookahead from the same max_queue_size budget.
        self._credits = anyio.Semaphore(iterator.max_queue_size - iterator.lookahead + 1)
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        task_group.start_soon(self._produce, send, previous)

    def __aiter__(self) -> StreamEpoch:
        return self

    async def __anext__(self) -> Batch:
        try:
            try:
                # The engine checkpoints on every step anyway; spare a loop pass when ready.
                item = self._receive.receive_nowait()
            except anyio.WouldBlock:
                item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        return self._taken(item)

    def next_nowait(self) -> Batch | None:
        """The next batch if one is buffered, None if none is yet; raises
        ``StopAsyncIteration`` at the end, or the source's error in its place."""
        try:
            item = self._receive.receive_nowait()
        except anyio.WouldBlock:
            return None
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        return self._taken(item)

    def _taken(self, item: Any) -> Batch:
        if isinstance(item, _Failure):
            self._receive.close()
            raise item.error
        self._credits.release()
        self._iterator.note_consumed()
        return item

    def abandon(self) -> anyio.Event:
        """Stop the producer and close the stream; the event is set once it has stopped."""
        self._scope.cancel()
        self._receive.close()
        return self._done

    async def aclose(self) -> None:
        """Stop reading this epoch (what the producer already read ahead is dropped)."""
        self.abandon()

    async def _produce(
        self, send: MemoryObjectSendStream[Any], previous: anyio.Event | None
    ) -> None:
        try:
            with send, self._scope:
                if previous is not None:
                    await previous.wait()  # the last epoch's producer owns the pass until then
                await self._feed(send)
        finally:
            self._done.set()

    async def _feed(self, send: MemoryObjectSendStream[Any]) -> None:
        iterator, cursor = self._iterator, self._cursor
        while True:
            try:
                self._credits.acquire_nowait()
            except anyio.WouldBlock:
                await self._credits.acquire()
            try:
                raw = await iterator.next_raw(cursor)
                if raw is None:
                    break
                batch = iterator.prepare(raw, cursor, cursor.got - 1, iterator.pass_checked)
            except Exception as exc:  # delivered in order, raised by __anext__ as itself
                await _send(send, _Failure(exc))
                return
            iterator.note_produced()
            if not await _send(send, batch):
                return
        try:
            await iterator.source_epoch_end()
        except Exception as exc:
            await _send(send, _Failure(exc))


async def _send(send: MemoryObjectSendStream[Any], item: Any) -> bool:
    try:
        try:
            send.send_nowait(item)  # a credit was taken first, so there is room
        except anyio.WouldBlock:
            await send.send(item)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        return False  # the engine stopped reading this epoch
    return True


class DirectEpoch:
    """One epoch of an in-memory source, read on demand by the engine's own task."""

    def __init__(self, iterator: EpochIterator, cursor: EpochCursor) -> None:
        self._iterator = iterator
        self._cursor = cursor
        self._finished = False

    def __aiter__(self) -> DirectEpoch:
        return self

    async def __anext__(self) -> Batch:
        iterator, cursor = self._iterator, self._cursor
        if self._finished:
            raise StopAsyncIteration
        raw = await iterator.next_raw(cursor)
        if raw is None:
            self._finished = True
            await iterator.source_epoch_end()
            raise StopAsyncIteration
        batch = iterator.prepare(raw, cursor, cursor.got - 1, iterator.pass_checked)
        iterator.note_produced()
        iterator.note_consumed()
        return batch

    def abandon(self) -> None:
        """Stop this epoch; nothing runs in the background."""
        self._finished = True

    async def aclose(self) -> None:
        """Stop this epoch."""
        self.abandon()
