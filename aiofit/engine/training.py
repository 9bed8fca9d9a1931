"""``aiofit.fit``: Keras's training loop over any source, on any anyio backend.

Who owns what: the :class:`EpochIterator` owns the source (batching,
shuffling, producers, the bounded buffer); the :class:`WorkerThread` owns the
thread that runs the model's steps; :func:`fit` owns the epoch structure and
the callback hooks, and opens all three in one ``async with`` so every task and
thread it starts is gone when it returns, however it returns. A callback may ask
the run to resume where a backup left it, through the :class:`FitProgress` that
:func:`fit` hands it (see :mod:`aiofit.engine.resume`).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np

from .._exception_groups import original_errors
from ..callbacks import Callback, CallbackList, History
from .epoch_iterator import EpochIterator
from .evaluation import run_test_epoch
from .logs import (
    check_positive_int,
    check_trainable,
    check_validation_freq,
    resolve_verbose,
    should_validate,
)
from .loop import Phase, aclose, drive, first_batch, open_pipeline
from .resume import FitProgress, ResumePoint
from .strategy import FitInputs, Strategy
from .worker_thread import WorkerThread

__all__ = ["fit"]

RAN_OUT = (
    "Your input ran out of data; interrupting training. Make sure that your dataset "
    "or generator can generate at least `steps_per_epoch * epochs` batches."
)

NO_POSITION = (
    "The backup was taken {} batches into epoch {}, but this kind of data (an iterable or "
    "a generator) cannot seek to a position: training resumes at the start of that epoch, "
    "and those batches are trained again."
)

VAL_RAN_OUT = (
    "The validation data ran out: no validation after epoch {}. A one-shot generator "
    "validates once; pass a re-iterable source, or an infinite one with validation_steps."
)


async def fit(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = None,
    epochs: int = 1,
    verbose: int | str = "auto",
    callbacks: Callback | list[Callback] | None = None,
    validation_data: Any = None,
    validation_steps: int | None = None,
    validation_freq: int | Collection[int] = 1,
    validation_batch_size: int | None = None,
    shuffle: bool = True,
    class_weight: dict[int, float] | None = None,
    sample_weight: Any = None,
    initial_epoch: int = 0,
    steps_per_epoch: int | None = None,
    max_queue_size: int = 10,
    workers: int = 1,
    strategy: Strategy | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs over ``x`` (Keras's ``Model.fit``).

    ``model`` is any :class:`aiofit.Trainable`. ``x`` is numpy arrays (with
    ``y`` and ``sample_weight``), an async iterable, a sync iterable (pulled in
    a worker thread) or an indexable dataset; see the API contract for epoch
    boundaries. The numpy steps run in one worker thread for the whole call, so
    the event loop stays free. A ``strategy`` (such as
    :class:`aiofit.distributed.DataParallel`) takes over the steps and the data
    layout; see :mod:`aiofit.engine.strategy`.

    Returns:
        The run's :class:`aiofit.History`.

    Raises:
        aiofit.DataError: A batch is malformed (the message names the batch).
        Exception: Anything a source, callback or the model raises, as itself.

    Example:
        >>> history = await aiofit.fit(model, x, y, epochs=3, verbose=0)
        >>> history.history["loss"]
    """
    check_trainable(model)
    check_positive_int("epochs", epochs, allow_none=False, minimum=0)
    check_positive_int("initial_epoch", initial_epoch, allow_none=False, minimum=0)
    check_positive_int("steps_per_epoch", steps_per_epoch)
    check_positive_int("validation_steps", validation_steps)
    check_validation_freq(validation_freq)
    verbose = resolve_verbose(verbose)
    if strategy is not None:
        inputs = _prepare(strategy, model, FitInputs(
            x, y, sample_weight, batch_size, validation_data, validation_batch_size,
            _callback_list(callbacks), verbose))  # fmt: skip
        x, y, sample_weight = inputs.x, inputs.y, inputs.sample_weight
        batch_size, callbacks, verbose = inputs.batch_size, inputs.callbacks, inputs.verbose
        validation_data = inputs.validation_data
        validation_batch_size = inputs.validation_batch_size
    rng = _model_rng(model)
    train = EpochIterator(
        x,
        y,
        sample_weight,
        batch_size=batch_size,
        shuffle=shuffle,
        steps_per_epoch=steps_per_epoch,
        class_weight=class_weight,
        max_queue_size=max_queue_size,
        workers=workers,
        rng=rng,
        role="train",
    )
    val = _validation_iterator(
        validation_data,
        validation_batch_size or batch_size,
        validation_steps,
        max_queue_size,
        workers,
        rng,
    )
    cbs = CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=train.num_batches,
    )
    run = _FitRun(
        model, cbs, train, val, validation_freq, steps_per_epoch, FitProgress(train), strategy
    )
    model.stop_training = False
    with original_errors():
        await run.run(initial_epoch, epochs)
    assert cbs.history is not None
    return cbs.history


def _prepare(strategy: Any, model: Any, inputs: FitInputs) -> FitInputs:
    if not isinstance(strategy, Strategy):
        raise TypeError(
            "strategy must implement aiofit.engine.strategy.Strategy (e.g. "
            f"aiofit.distributed.DataParallel()). Received: {strategy!r}"
        )
    return strategy.prepare(model, inputs)


def _callback_list(callbacks: Callback | list[Callback] | None) -> list[Any]:
    if callbacks is None:
        return []
    return [callbacks] if isinstance(callbacks, Callback) else list(callbacks)


def _model_rng(model: Any) -> np.random.Generator:
    rng = getattr(model, "rng", None)
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng()


def _validation_iterator(
    data: Any, batch_size: int | None, steps: int | None, queue: int, workers: int,
    rng: np.random.Generator,
) -> EpochIterator | None:  # fmt: skip
    if data is None:
        return None
    if isinstance(data, tuple):
        if len(data) not in (2, 3):
            raise ValueError(
                "`validation_data` must be a tuple (x, y) or (x, y, sample_weight), or a "
                f"data source. Received: a tuple of length {len(data)}"
            )
        vx, vy, vw = (*data, None)[:3]
    else:
        vx, vy, vw = data, None, None
    return EpochIterator(
        vx,
        vy,
        vw,
        batch_size=batch_size,
        shuffle=False,
        steps_per_epoch=steps,
        max_queue_size=queue,
        workers=workers,
        rng=rng,
        role="validation",
    )


@dataclass
class _FitRun:
    """The state of one fit call: what the epoch loop and the exit paths share."""

    model: Any
    cbs: CallbackList
    train: EpochIterator
    val: EpochIterator | None
    validation_freq: int | Collection[int]
    steps_per_epoch: int | None
    progress: FitProgress
    strategy: Strategy | None = None
    logs: dict[str, Any] = field(default_factory=dict)
    validations: int = 0

    async def run(self, initial_epoch: int, epochs: int) -> None:
        began = False
        for callback in self.cbs.callbacks:
            set_progress = getattr(callback, "set_progress", None)
            if callable(set_progress):
                set_progress(self.progress)
        try:
            async with open_pipeline(self.train, self.val) as worker:
                began = True
                await self.cbs.on_train_begin({})
                if self.strategy is not None:
                    await self.strategy.begin(self.model, worker)
                point = self._resume_point()
                start = initial_epoch if point is None else point.epoch
                await self._epochs(worker, start, epochs, point)
            self.progress.completed = True
        except BaseException:
            if began:
                # Callbacks release what they hold even when cancelled or failing.
                with anyio.CancelScope(shield=True):
                    await self.cbs.on_train_end(self.logs)
            raise
        await self.cbs.on_train_end(self.logs)

    def _resume_point(self) -> ResumePoint | None:
        """The point a callback asked to resume at, with the source seeked there."""
        point, train = self.progress.requested, self.train
        if point is None:
            return None
        if point.steps is not None and train.num_batches not in (None, point.steps):
            raise ValueError(
                f"The backup was taken with {point.steps} batches per epoch, but this fit "
                f"has {train.num_batches}: it cannot resume from it. Pass the same data, "
                f"batch_size and steps_per_epoch, or delete the backup. Received: "
                f"steps={train.num_batches}"
            )
        if point.source is None or not train.positionable:
            if point.batches:
                message = NO_POSITION.format(point.batches, point.epoch + 1)
                warnings.warn(message, UserWarning, stacklevel=5)
            return ResumePoint(point.epoch, steps=point.steps)
        train.seek(point.source, point.batches)
        return point

    async def _epochs(
        self, worker: WorkerThread, initial_epoch: int, epochs: int, point: ResumePoint | None
    ) -> None:
        for epoch in range(initial_epoch, epochs):
            logs, count = await self._train_epoch(worker, epoch, point)
            point = None
            if logs is None:
                warnings.warn(RAN_OUT, UserWarning, stacklevel=4)
                return
            if self.val is not None and should_validate(self.validation_freq, epoch):
                val_logs = await run_test_epoch(
                    self.model, self.cbs, worker, self.val, self.validations,
                    **self._strategy_steps(worker, "test_step"),
                )  # fmt: skip
                self.validations += 1
                if not val_logs:
                    warnings.warn(VAL_RAN_OUT.format(epoch + 1), UserWarning, stacklevel=4)
                logs.update({f"val_{key}": value for key, value in val_logs.items()})
            await self.cbs.on_epoch_end(epoch, logs)
            self.logs = logs
            ran_out = self.train.exhausted and count < (self.steps_per_epoch or 0)
            stop = bool(self.model.stop_training)
            if self.strategy is not None:
                stop, ran_out = await self.strategy.any_rank(stop, ran_out)
                self.model.stop_training = stop
            if stop:
                return
            if ran_out:
                warnings.warn(RAN_OUT, UserWarning, stacklevel=4)
                return

    def _strategy_steps(self, worker: WorkerThread, step: str) -> dict[str, Any]:
        """The strategy's ``astep`` and ``agree`` for a :class:`Phase` (none without one)."""
        strategy, model = self.strategy, self.model
        if strategy is None:
            return {}

        async def astep(x: Any, y: Any, sample_weight: Any) -> Any:
            return await getattr(strategy, step)(worker, model, x, y, sample_weight)

        async def agree(has_batch: bool) -> bool:
            # Every participant learns who is out of batches or asked to stop.
            out, stop = await strategy.any_rank(not has_batch, bool(model.stop_training))
            if stop:
                model.stop_training = True
            return not (out or stop)

        return {"astep": astep, "agree": agree}

    async def _train_epoch(
        self, worker: WorkerThread, epoch: int, point: ResumePoint | None
    ) -> tuple[dict[str, Any] | None, int]:
        """The epoch's training logs and batch count; ``None`` logs when it got no batch.

        Resumed at ``point``, the epoch goes on from its saved means and batch count;
        a backup taken after its last batch leaves no batch to run, only its end.
        """
        model, cbs = self.model, self.cbs
        means = self.progress.begin_epoch(epoch, point)
        count = 0 if point is None else point.batches
        batches = self.train.epoch(epoch)
        try:
            first = await first_batch(batches)
            if self.strategy is not None and (await self.strategy.any_rank(first is None))[0]:
                first = None  # a participant has no batch this epoch, so none trains one
            if first is None and count == 0:
                return None, 0
            await cbs.on_epoch_begin(epoch, {})
            phase = Phase(
                model.train_on_batch,
                "on_train_batch_begin",
                "on_train_batch_end",
                self.progress.record,
                where=lambda i: f"batch {i} of epoch {epoch + 1}",
                stop=lambda: bool(model.stop_training),
                **self._strategy_steps(worker, "train_step"),
            )
            if first is not None:
                count = await drive(batches, first, worker, cbs, phase, count)
        finally:
            await aclose(batches)
        self.progress.end_epoch()
        return means.result(), count
