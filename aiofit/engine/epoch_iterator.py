"""The data pipeline: one source, owned for a whole fit/evaluate/predict, epoch by epoch.

Who owns what (after Keras's ``trainers/epoch_iterator.py``):

- the *source* (``aiofit.sources``) knows its kind of data: how to open a *pass*
  (one iteration), whether it can be opened again (``one_shot``), how many batches
  a pass holds when that is known, and how to close what it opened;
- the :class:`EpochIterator` knows epochs: ``steps_per_epoch``, when a pass ends an
  epoch or continues into the next, when the data has run out, checking each batch
  and folding ``class_weight`` in, and the bounded buffer between the producer task
  and the engine;
- the engine knows everything else (callbacks, validation, ``epochs``).

Epoch rules (API.md "Steps"): with ``steps_per_epoch=None`` each epoch is one whole
pass. With ``steps_per_epoch=N`` each epoch takes N batches from the live pass,
which carries over into the next epoch; when a re-iterable source's pass ends in the
middle of an epoch, that epoch ends short with Keras's "ran out of data" warning and
the next one starts a fresh pass. A one-shot source that has ended sets
:attr:`EpochIterator.exhausted`, and later epochs yield nothing: there is no replay.
Nothing is read past the N batches of the epoch being served.

Resuming (:mod:`aiofit.engine.resume`): :meth:`EpochIterator.position` says where a
positionable source stands after a number of trained batches, and
:meth:`EpochIterator.seek` makes the next epoch start there; the bookkeeping lives
in :class:`~aiofit.engine.source_position.PassTracker`.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import numpy as np
from anyio.abc import TaskGroup

from .._exception_groups import original_errors
from .._exceptions import DataError
from ..nn.validation import check_arrays, class_weight_to_sample_weight, split_batch
from .epoch_stream import DirectEpoch, EpochCursor, StreamEpoch
from .resume import SourcePosition
from .source_factory import check_options, make_source
from .source_position import PassTracker
from .source_protocol import Pass

__all__ = ["Batch", "EpochIterator", "PipelineStatistics"]

Batch = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


@dataclass(frozen=True)
class PipelineStatistics:
    """What the pipeline has done so far (for tests and benchmarks).

    Attributes:
        produced: batches taken from the source and checked.
        consumed: batches handed to the engine.
        max_ahead: the most batches ever produced but not yet consumed; never
            more than ``max_queue_size`` (the producer waits for room first).
        max_queue_size: the bound.
    """

    produced: int
    consumed: int
    max_ahead: int
    max_queue_size: int

    @property
    def ahead(self) -> int:
        """Batches produced but not yet consumed right now."""
        return self.produced - self.consumed


class EpochIterator:
    """Owns one source for a whole fit/evaluate/predict; yields it epoch by epoch.

    Example:
        >>> async with EpochIterator(x, y, batch_size=32, shuffle=True) as data:  # doctest: +SKIP
        ...     for epoch in range(3):
        ...         async for x_batch, y_batch, sw_batch in data.epoch(epoch):
        ...             ...

    Args:
        x: numpy arrays; an async iterable; a sync iterable; a list/tuple of
            batches; or an indexable dataset (API.md "What x may be").
        y: targets, only with array ``x``.
        sample_weight: per-sample weights, only with array ``x``.
        batch_size: samples per batch for arrays (default 32); ignored otherwise.
        shuffle: reshuffle arrays and indexable datasets at each pass.
        steps_per_epoch: batches per epoch taken from the live pass, or None for
            one whole pass per epoch.
        class_weight: dict class index -> weight, folded into each batch's weights.
        max_queue_size: the most batches read ahead of the engine.
        workers: concurrent fetches for indexable datasets.
        rng: generator for shuffling (a fresh unseeded one when None).
        role: "train", "test"/"evaluate"/"validation", or "predict" (the only role
            where batches may come without targets).

    Attributes:
        exhausted: True once the data has run out for good: a one-shot source
            (a generator) has ended, or a re-iterable one gave an empty pass.
            Every later epoch yields nothing. With ``steps_per_epoch=None`` a
            one-shot source is exhausted by its first epoch, which is a normal
            end; the engine warns "ran out of data" when an epoch yields no batch,
            or when one ends short of ``steps_per_epoch`` with ``exhausted`` set.
        lookahead: pulls a source may queue ahead of the producer (counted
            against ``max_queue_size``).
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        batch_size: int | None = None,
        shuffle: bool = False,
        steps_per_epoch: int | None = None,
        class_weight: dict[int, float] | None = None,
        max_queue_size: int = 10,
        workers: int = 1,
        rng: np.random.Generator | None = None,
        role: str = "train",
    ) -> None:
        check_options(batch_size, steps_per_epoch, max_queue_size, workers, role)
        self.steps_per_epoch = steps_per_epoch
        self.max_queue_size = max_queue_size
        self.role = role
        self.exhausted = False
        self._class_weight = class_weight if role != "predict" else None
        rng = rng if rng is not None else np.random.default_rng()
        self._source = make_source(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            rng=rng,
            workers=workers,
            class_weight=self._class_weight,
            role=role,
            max_queue_size=max_queue_size,
        )
        self.lookahead: int = getattr(self._source, "lookahead", 1)
        self._tracker = PassTracker(self._source, rng)
        self._pass: Pass | None = None
        self._pass_count = 0
        self._opened_once = False
        self._tg: TaskGroup | None = None
        self._current: StreamEpoch | DirectEpoch | None = None
        self._produced = 0
        self._consumed = 0
        self._max_ahead = 0
        self._resume_done = 0

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch: ``steps_per_epoch``, else the source's length when known.

        For an iterable of unknown length this becomes the length of its first
        complete pass (as Keras infers it), and stays None for a one-shot source.
        """
        return self.steps_per_epoch or self._source.num_batches

    async def __aenter__(self) -> EpochIterator:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        try:
            self._abandon_current()
            tg.cancel_scope.cancel()
            # No exception passed in: the caller's own exception must propagate as
            # itself, not wrapped by the task group into an ExceptionGroup.
            with original_errors():
                await tg.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                await self._end_pass()
                await self._source.aclose()

    def epoch(self, epoch_index: int = 0) -> AsyncIterator[Batch]:
        """The batches of one epoch, in order, checked, as ``(x, y, sample_weight)``.

        An error raised by the source, or a :class:`aiofit.DataError` for a
        malformed batch, is raised at that batch's position, as itself. Asking
        for a new epoch abandons what is left of the previous one.
        """
        if self._tg is None:
            raise RuntimeError(
                "EpochIterator.epoch() needs the iterator to be entered first: "
                "use `async with EpochIterator(...) as data:`"
            )
        previous = self._abandon_current()
        cursor = EpochCursor(epoch_index, got=self._resume_done)
        self._resume_done = 0
        self._tracker.new_epoch()
        if self._source.in_memory:
            self._current = DirectEpoch(self, cursor)
        else:
            self._current = StreamEpoch(self, cursor, self._tg, previous)
        return self._current

    @property
    def positionable(self) -> bool:
        """Whether the source can report a position (arrays, indexable datasets, lists)."""
        return self._tracker.positionable

    def position(self, done: int, *, epoch_over: bool) -> SourcePosition | None:
        """Where the source stands once ``done`` batches of the current epoch have
        trained (None when it cannot say; see :mod:`aiofit.engine.source_position`)."""
        return self._tracker.position(
            done, epoch_over=epoch_over, steps_per_epoch=self.steps_per_epoch
        )

    def seek(self, position: SourcePosition, done: int) -> None:
        """Start the next :meth:`epoch` at ``position``, ``done`` batches into the epoch.

        Raises:
            ValueError: the source cannot report (nor seek to) a position.
        """
        if not self.positionable:
            raise ValueError(
                "Only arrays, indexable datasets and lists of batches can seek to a "
                f"position. Received: a {type(self._source).__name__}"
            )
        self._tracker.seek(position, done)
        self._resume_done = done

    def statistics(self) -> PipelineStatistics:
        """Counts of produced/consumed batches and the most ever read ahead."""
        return PipelineStatistics(
            self._produced, self._consumed, self._max_ahead, self.max_queue_size
        )

    # The methods below are called by the epoch streams (one task at a time).

    async def next_raw(self, cursor: EpochCursor) -> Any | None:
        """The next raw batch of this epoch, or None when the epoch is over."""
        limit = self.steps_per_epoch
        if not cursor.started:
            cursor.started = True
            if self._tracker.seeking:
                await self._end_pass()
                self._pass, self._pass_count = await self._tracker.reopen(self._source, self._tg)
                self._opened_once = self._opened_once or self._pass is not None
            elif limit is None and self._pass is not None and not self._source.one_shot:
                await self._end_pass()  # an epoch abandoned half-way: start afresh
        while not self.exhausted and (limit is None or cursor.got < limit):
            if self._pass is None:
                if self._source.one_shot and self._opened_once:
                    self.exhausted = True
                    return None
                self._tracker.opening()
                self._pass = await self._source.open_pass(self._tg)
                self._pass_count = 0
                self._opened_once = True
            batch = await self._pass.next(None if limit is None else limit - cursor.got)
            if batch is not None:
                cursor.got += 1
                self._pass_count += 1
                self._tracker.served(self._pass_count, cursor.got)
                return batch
            if self._on_pass_end(cursor, await self._close_ended_pass()):
                return None
        return None

    async def _close_ended_pass(self) -> int:
        count = self._pass_count
        await self._end_pass()
        return count

    def _on_pass_end(self, cursor: EpochCursor, pass_count: int) -> bool:
        """Decide what a pass ending means; True when the epoch is over."""
        if self._source.one_shot or pass_count == 0:
            self.exhausted = True  # no replay: a one-shot or empty source has run out
            return True
        if self.steps_per_epoch is None:
            if self._source.num_batches is None:
                self._source.num_batches = pass_count  # learned, as Keras does
            return True
        if cursor.got > 0:
            _ran_out_warning(self.steps_per_epoch)
            return True
        return False  # the live pass ended right at the epoch boundary: open a fresh one

    def prepare(self, raw: Any, cursor: EpochCursor, index: int, checked: bool) -> Batch:
        """Check one raw batch and fold ``class_weight`` into its weights."""
        if checked:
            batch: Batch = raw
        else:
            where = f"batch {index} of epoch {cursor.epoch_index + 1}"
            parts = (
                _split_predict(raw, where) if self.role == "predict" else split_batch(raw, where)
            )
            x, y, sw = check_arrays(*parts, where=where)
            if self._class_weight is not None and y is not None:
                sw = class_weight_to_sample_weight(y, self._class_weight, sw, where=where)
            batch = (x, y, sw)
        return batch

    @property
    def pass_checked(self) -> bool:
        """Whether the live pass hands out batches that are already checked."""
        return bool(getattr(self._pass, "checked", False))

    def note_produced(self) -> None:
        """Count a batch taken from the source."""
        self._produced += 1
        self._max_ahead = max(self._max_ahead, self._produced - self._consumed)

    def note_consumed(self) -> None:
        """Count a batch handed to the engine."""
        self._consumed += 1

    async def source_epoch_end(self) -> None:
        """Tell the source an epoch is over (an indexable dataset's ``on_epoch_end``)."""
        await self._source.on_epoch_end()

    async def _end_pass(self) -> None:
        live, self._pass = self._pass, None
        if live is not None:
            with anyio.CancelScope(shield=True):
                await live.aclose()

    def _abandon_current(self) -> anyio.Event | None:
        current, self._current = self._current, None
        return None if current is None else current.abandon()


def _ran_out_warning(steps_per_epoch: int) -> None:
    warnings.warn(
        "Your input ran out of data in the middle of an epoch; the epoch ends early and "
        "the next one starts a new pass. Make sure that your data can generate at least "
        f"`steps_per_epoch` batches per pass. Received: steps_per_epoch={steps_per_epoch}",
        UserWarning,
        stacklevel=2,
    )


def _split_predict(raw: Any, where: str) -> tuple[Any, Any, Any]:
    if isinstance(raw, tuple | list):
        if len(raw) == 1:
            return raw[0], None, None
        return split_batch(raw, where)
    if isinstance(raw, np.ndarray):
        return raw, None, None
    raise DataError(
        f"{where}: expected an array x, or a tuple (x,), (x, y) or (x, y, sample_weight); "
        f"received a {type(raw).__name__}"
    )
