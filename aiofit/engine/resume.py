"""Resuming a fit where a backup left it: the engine's side of ``BackupAndRestore``.

The mechanism, one small object and one direction:

1. Before ``on_train_begin``, :func:`aiofit.fit` hands its :class:`FitProgress` to
   every callback that has a ``set_progress(progress)`` method.
2. A callback that restores a backup does so in ``on_train_begin``: it puts back
   the weights, optimizer and rng state through the model, then calls
   :meth:`FitProgress.request_resume` with the :class:`ResumePoint` it saved.
3. After ``on_train_begin`` the engine reads :attr:`FitProgress.requested`. It
   starts at that point's epoch (overriding ``initial_epoch``, as Keras does), with
   that epoch's running means, and numbers batches on from ``batches``. For a
   source that can report a position (arrays, indexable datasets, lists of
   batches) the epoch iterator re-draws the order of the pass the backup was
   taken in from the rng state saved when it was drawn, skips the batches already
   trained (without fetching them), then puts the rng back to its state at the
   backup, so the run goes on bit-identically. Any other source (iterables,
   generators) resumes at the start of the backup's epoch, with a warning when
   the backup was taken in the middle of it: those batches are trained again.
4. While training, :meth:`FitProgress.snapshot` says where the run stands. It is
   consistent in ``on_train_batch_end`` (a callback that overrides a batch hook
   puts the loop in lockstep: no later step has started) and in ``on_epoch_end``
   (which resumes at the start of the next epoch).
5. :attr:`FitProgress.completed` turns True once the epochs ran to their end,
   just before ``on_train_end``: a backup is deleted then, never after an error
   or a cancellation.
6. A *self-positioning stream* (a one-shot source that keeps its position itself,
   such as :func:`aiofit.sources.from_redis_stream`; the protocol is
   :class:`~aiofit.engine.source_position.ResumableStream`) reports its state in
   :attr:`SourcePosition.stream` (JSON: for Redis, the last trained entry id), is
   handed it back on resume, and resumes exactly where the backup was taken. Once
   a backup holding a point is durable, the callback that wrote it awaits
   :meth:`FitProgress.commit` with that point: the stream may then forget what the
   point covers (Redis acknowledges those entries).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .logs import WeightedMeans

if TYPE_CHECKING:
    from .epoch_iterator import EpochIterator

__all__ = ["FitProgress", "ResumePoint", "SourcePosition"]

RngState = dict[str, Any]


@dataclass(frozen=True)
class SourcePosition:
    """Where a positionable source stood, and the state of its shuffling rng.

    Attributes:
        rng_state: The shuffling generator's ``bit_generator.state`` at the backup.
        pass_rng_state: Its state just before the live pass drew its order, or
            None when the next epoch opens a fresh pass.
        batches: Batches of that pass already trained.
        stream: A self-positioning stream's own state (JSON-able), else None.
        on_durable: Not saved: the stream's ``commit``, awaited with ``stream``
            once a backup holding this position is durable.
    """

    rng_state: RngState | None
    pass_rng_state: RngState | None = None
    batches: int = 0
    stream: dict[str, Any] | None = None
    on_durable: Callable[[dict[str, Any]], Awaitable[None]] | None = field(
        default=None, compare=False, repr=False
    )


@dataclass(frozen=True)
class ResumePoint:
    """Where a fit resumes: an epoch, the batches of it already trained, and more.

    Attributes:
        epoch: 0-based epoch to resume in.
        batches: Batches of that epoch already trained (0: at its start).
        sums: The epoch's running log sums so far (weighted by batch size)...
        counts: ...and the samples behind each, so the epoch's logs come out
            as in an uninterrupted run.
        steps: Batches per epoch when the backup was taken (checked on resume).
        source: The source's position; None for a source that cannot report one.
    """

    epoch: int
    batches: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    steps: int | None = None
    source: SourcePosition | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (rng states included, as Python ints)."""
        source = self.source
        return {
            "epoch": self.epoch,
            "batches": self.batches,
            "sums": dict(self.sums),
            "counts": dict(self.counts),
            "steps": self.steps,
            "source": None if source is None else {
                "rng_state": source.rng_state,
                "pass_rng_state": source.pass_rng_state,
                "batches": source.batches,
                "stream": source.stream,
            },
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> ResumePoint:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``data`` is not a resume point.
        """
        try:
            source = data["source"]
            point = cls(
                epoch=_count(data["epoch"]),
                batches=_count(data["batches"]),
                sums={str(k): float(v) for k, v in data["sums"].items()},
                counts={str(k): _count(v) for k, v in data["counts"].items()},
                steps=None if data["steps"] is None else _count(data["steps"]),
                source=None if source is None else SourcePosition(
                    _state(source["rng_state"]), _state(source["pass_rng_state"]),
                    _count(source["batches"]), _state(source.get("stream"))),
            )  # fmt: skip
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(
                f"Not a valid resume point ({type(exc).__name__}: {exc}). Received: {data!r:.200}"
            ) from exc
        return point


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count >= 0, got {value!r}")
    return value


def _state(value: Any) -> RngState | None:
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"expected a state dict, got {value!r:.80}")
    return value


class FitProgress:
    """Where one fit stands; the documented link between the engine and a backup callback.

    Callbacks read :meth:`snapshot` and :attr:`completed`, and may call
    :meth:`request_resume` from ``on_train_begin``; the other methods are the
    engine's.

    Attributes:
        requested: The resume point asked for in ``on_train_begin``, if any.
        completed: True once ``fit`` ran to its end normally (set before
            ``on_train_end``); False while training and after an error or a
            cancellation.
    """

    def __init__(self, train: EpochIterator) -> None:
        self._train = train
        self._epoch = 0
        self._batches = 0
        self._epoch_over = False
        self._means = WeightedMeans()
        self.requested: ResumePoint | None = None
        self.completed = False

    def request_resume(self, point: ResumePoint) -> None:
        """Ask the engine to start at ``point`` (call it from ``on_train_begin``)."""
        if not isinstance(point, ResumePoint):
            raise TypeError(f"request_resume takes a ResumePoint. Received: {point!r}")
        self.requested = point

    async def commit(self, point: ResumePoint) -> None:
        """Report that a backup holding ``point`` is durable (on disk, fsynced).

        A self-positioning stream then lets go of what ``point`` covers (Redis
        acknowledges those entries); for any other source this does nothing. Call
        it only after the write has completed, with a point from :meth:`snapshot`.
        """
        source = point.source
        if source is not None and source.stream is not None and source.on_durable is not None:
            await source.on_durable(source.stream)

    def snapshot(self) -> ResumePoint:
        """Where the run stands now: after the last batch trained, or after the epoch."""
        train = self._train
        if self._epoch_over:
            return ResumePoint(
                self._epoch + 1, steps=train.num_batches,
                source=train.position(self._batches, epoch_over=True),
            )  # fmt: skip
        sums, counts = self._means.state()
        return ResumePoint(
            self._epoch, self._batches, sums, counts, train.num_batches,
            train.position(self._batches, epoch_over=False),
        )  # fmt: skip

    # The engine's side.

    def begin_epoch(self, epoch: int, point: ResumePoint | None) -> WeightedMeans:
        """Start counting ``epoch`` (from ``point`` when resuming); returns its means."""
        self._epoch, self._epoch_over = epoch, False
        self._batches = 0 if point is None else point.batches
        self._means = WeightedMeans()
        if point is not None:
            self._means.restore(point.sums, point.counts)
        return self._means

    def record(self, logs: dict[str, Any], size: int) -> None:
        """One batch trained: add its logs to the epoch's means."""
        self._means.add(logs, size)
        self._batches += 1

    def end_epoch(self) -> None:
        """The epoch's batches are over: a snapshot now resumes at the next epoch."""
        self._epoch_over = True
