"""Where the live pass of a source stands, and how to get back there after a crash.

A source can report a position when one of its passes is a pure function of the
shuffling rng's state when the pass opens, and passing over a batch costs no I/O:
numpy arrays, indexable datasets (skipped without fetching) and lists of batches.
Its position is then the rng state just before the pass drew its order, plus the
batches of the pass already trained; to seek there, the tracker sets the rng to
that state, opens a pass (which draws the same order), skips the batches, and
puts the rng back to its state at the backup (dropout goes on from there).

The epoch iterator tells the tracker when it opens a pass and when an epoch
serves its first batch (the *anchor*: which pass, and how far into it the epoch
began, since with ``steps_per_epoch`` a pass spans epochs). A position is then
computed from the anchor and the number of batches *trained*, never from what
the loop has read ahead. Iterables (generators, streams) report no position:
they resume at an epoch boundary (see :mod:`aiofit.engine.resume`).

The exception is a *self-positioning stream* (:class:`ResumableStream`, e.g.
:func:`aiofit.sources.from_redis_stream`): a one-shot async iterable that can say
where it stands once its first ``n`` batches (of this process) have trained, as a
JSON-able state, and can start from such a state on a rerun. Its position is that
state; seeking hands the state to the stream before its pass is opened again.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from anyio.abc import TaskGroup

from ..sources.arrays import ArraySource
from ..sources.indexable import IndexableSource
from ..sources.iterables import SequenceSource
from .resume import RngState, SourcePosition
from .source_protocol import Pass, Source

__all__ = ["PassTracker", "ResumableStream"]

_POSITIONABLE = (ArraySource, IndexableSource, SequenceSource)


@runtime_checkable
class ResumableStream(Protocol):
    """A one-shot stream of batches that keeps its own position across processes.

    Batches are trained in the order the stream hands them out, so "the first
    ``trained`` batches" names exactly what a backup covers.
    """

    def stream_state(self, trained: int) -> dict[str, Any]:
        """A JSON-able state once the first ``trained`` batches handed out by this
        object have trained (0: the state it was resumed from, if any)."""
        ...

    def resume_from(self, state: dict[str, Any]) -> None:
        """Start after ``state`` (a :meth:`stream_state` of an earlier run)."""
        ...

    async def commit(self, state: dict[str, Any]) -> None:
        """A backup holding ``state`` is durable: release what it covers."""
        ...


def _resumable(source: Source) -> ResumableStream | None:
    # The engine wraps an async iterable in an AsyncIterableSource; the stream is
    # the iterable inside.
    for candidate in (source, getattr(source, "iterable", None)):
        if isinstance(candidate, ResumableStream):
            return candidate
    return None


class PassTracker:
    """Tracks one source's live pass for :class:`SourcePosition`; seeks back to one.

    Args:
        source: The epoch iterator's source.
        rng: The generator the source shuffles with.
    """

    def __init__(self, source: Source, rng: np.random.Generator) -> None:
        self._stream = _resumable(source)
        self.positionable = isinstance(source, _POSITIONABLE) or self._stream is not None
        self._stream_trained = 0  # batches of the stream trained, when last known
        self._rng = rng
        self._pass_rng: RngState | None = None
        self._anchor: tuple[RngState | None, int] | None = None
        self._seek: tuple[SourcePosition, int] | None = None

    def seek(self, position: SourcePosition, done: int) -> None:
        """Make the next epoch start at ``position``, ``done`` batches into it.

        Raises:
            ValueError: the position is of another kind of source.
        """
        if (position.stream is None) != (self._stream is None):
            saved = "a stream's position" if position.stream is not None else "no stream state"
            raise ValueError(
                f"The backup holds {saved}, which does not fit this kind of source: pass "
                f"the same data as the run that made it, or delete the backup. Received: "
                f"position={position!r:.200}"
            )
        if self._stream is not None and position.stream is not None:
            self._stream.resume_from(position.stream)
        self._seek = (position, done)

    @property
    def seeking(self) -> bool:
        """Whether the next epoch starts with a seek."""
        return self._seek is not None

    def opening(self) -> None:
        """A pass is about to open: remember the state its order is drawn from."""
        self._pass_rng = dict(self._rng.bit_generator.state)

    def new_epoch(self) -> None:
        """An epoch starts: it anchors on its first batch (a seek anchors it already)."""
        if self._seek is None:
            self._anchor = None

    def served(self, pass_count: int, got: int) -> None:
        """The epoch served a batch: ``pass_count`` of its pass, ``got`` of the epoch."""
        if self._anchor is None:
            self._anchor = (self._pass_rng, pass_count - got)

    def position(
        self, done: int, *, epoch_over: bool, steps_per_epoch: int | None
    ) -> SourcePosition | None:
        """Where the source stands once ``done`` batches of this epoch have trained."""
        if not self.positionable:
            return None
        rng = dict(self._rng.bit_generator.state)
        if self._stream is not None:
            return self._stream_position(rng, done)
        if self._anchor is None or (epoch_over and steps_per_epoch is None):
            return SourcePosition(rng)  # the next batch comes from a fresh pass
        pass_rng, offset = self._anchor
        return SourcePosition(rng, pass_rng, offset + done)

    def _stream_position(self, rng: RngState, done: int) -> SourcePosition:
        if self._anchor is not None:
            self._stream_trained = self._anchor[1] + done
        stream = self._stream
        assert stream is not None
        return SourcePosition(
            rng, stream=stream.stream_state(self._stream_trained), on_durable=stream.commit
        )

    async def reopen(
        self, source: Source, task_group: TaskGroup | None
    ) -> tuple[Pass | None, int]:
        """Do the pending seek: the live pass (None for a fresh one) and its count."""
        assert self._seek is not None
        (position, done), self._seek = self._seek, None
        live: Pass | None = None
        self._anchor = None
        if self._stream is not None:
            # The stream was handed its state by seek(); it counts from 0 again.
            self.opening()
            live = await source.open_pass(task_group)
            self._anchor, self._stream_trained = (None, -done), 0
            if position.rng_state is not None:
                self._rng.bit_generator.state = position.rng_state
            return live, 0
        if position.pass_rng_state is not None:
            self._rng.bit_generator.state = position.pass_rng_state
            self.opening()
            live = await source.open_pass(task_group)
            await _skip(live, position.batches)
            self._anchor = (position.pass_rng_state, position.batches - done)
        if position.rng_state is not None:
            self._rng.bit_generator.state = position.rng_state
        return live, position.batches if live is not None else 0


async def _skip(live: Any, count: int) -> None:
    skip = getattr(live, "skip", None)
    if callable(skip):  # the optional fast path of the Pass protocol
        skip(count)
        return
    for _ in range(count):  # in memory: slicing or indexing only
        if await live.next(None) is None:
            return
