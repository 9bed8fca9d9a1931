"""``aiofit.evaluate`` and ``aiofit.predict``, and the test epoch fit's validation shares."""

from __future__ import annotations

import warnings
from contextlib import AsyncExitStack
from typing import Any

import numpy as np

from ..callbacks import Callback, CallbackList
from .epoch_iterator import EpochIterator
from .logs import WeightedMeans, check_positive_int, check_trainable, resolve_verbose
from .loop import Phase, aclose, drive, first_batch, original_errors
from .worker_thread import WorkerThread

__all__ = ["evaluate", "predict", "run_test_epoch"]


async def run_test_epoch(
    model: Any, cbs: CallbackList, worker: WorkerThread, data: EpochIterator, index: int,
    *, astep: Any = None, agree: Any = None,
) -> dict[str, float]:  # fmt: skip
    """One pass of ``test_on_batch`` over ``data.epoch(index)``, firing the on_test_* hooks.

    ``astep`` and ``agree`` are a strategy's (see :class:`~aiofit.engine.loop.Phase`).

    Returns the batch-size-weighted means of the step logs (empty when the
    source gave no batch).
    """
    await cbs.on_test_begin({})
    means = WeightedMeans()
    batches = data.epoch(index)
    try:
        phase = Phase(
            model.test_on_batch,
            "on_test_batch_begin",
            "on_test_batch_end",
            means.add,
            where=lambda i: f"batch {i} of the evaluation data",
            astep=astep,
            agree=agree,
        )
        await drive(batches, await first_batch(batches), worker, cbs, phase)
    finally:
        await aclose(batches)
    logs = means.result()
    await cbs.on_test_end(logs)
    return logs


async def evaluate(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = None,
    steps: int | None = None,
    sample_weight: Any = None,
    verbose: int | str = "auto",
    callbacks: Callback | list[Callback] | None = None,
    return_dict: bool = True,
) -> dict[str, float] | list[float]:
    """The model's loss and metrics over ``x`` (Keras's ``Model.evaluate``).

    ``x`` may be any source :func:`aiofit.fit` takes; ``steps`` limits the
    number of batches (needed for an infinite source).

    Returns:
        ``{"loss": ..., <metric>: ...}``: means weighted by batch size; a list
        in the same order when ``return_dict=False``.
    """
    check_trainable(model)
    check_positive_int("steps", steps)
    verbose = resolve_verbose(verbose)
    data = EpochIterator(
        x,
        y,
        sample_weight,
        batch_size=batch_size,
        shuffle=False,
        steps_per_epoch=steps,
        rng=np.random.default_rng(0),
        role="evaluate",
    )
    cbs = CallbackList(
        callbacks,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=1,
        steps=data.num_batches,
    )
    with original_errors():
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(data)
            worker = await stack.enter_async_context(WorkerThread("aiofit-compute"))
            logs = await run_test_epoch(model, cbs, worker, data, 0)
    if not logs:
        warnings.warn("evaluate got no batch: the input ran out of data.", UserWarning, 2)
    return logs if return_dict else list(logs.values())


async def predict(
    model: Any,
    x: Any,
    *,
    batch_size: int | None = None,
    steps: int | None = None,
    verbose: int | str = "auto",
    callbacks: Callback | list[Callback] | None = None,
) -> np.ndarray:
    """``predict_on_batch`` over every batch of ``x``, concatenated (Keras's ``Model.predict``).

    Sources may yield ``x`` alone or tuples whose first element is ``x``.

    Raises:
        ValueError: The source gave no batch at all.
    """
    check_trainable(model)
    check_positive_int("steps", steps)
    verbose = resolve_verbose(verbose)
    data = EpochIterator(
        x,
        batch_size=batch_size,
        shuffle=False,
        steps_per_epoch=steps,
        rng=np.random.default_rng(0),
        role="predict",
    )
    cbs = CallbackList(
        callbacks,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=1,
        steps=data.num_batches,
    )
    outputs: list[np.ndarray] = []

    def collect(result: Any, size: int) -> None:
        outputs.append(result)

    with original_errors():
        await _predict_batches(model, cbs, data, collect)
    if not outputs:
        raise ValueError("predict got no batch: the input is empty. Received: x with no batches")
    return np.concatenate(outputs, axis=0)


async def _predict_batches(
    model: Any, cbs: CallbackList, data: EpochIterator, collect: Any
) -> None:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(data)
        worker = await stack.enter_async_context(WorkerThread("aiofit-compute"))
        await cbs.on_predict_begin({})
        batches = data.epoch(0)
        try:
            phase = Phase(
                lambda bx, _y, _w: model.predict_on_batch(bx),
                "on_predict_batch_begin",
                "on_predict_batch_end",
                collect,
                where=lambda i: f"batch {i} of the prediction data",
                predicting=True,
            )
            await drive(batches, await first_batch(batches), worker, cbs, phase)
        finally:
            await aclose(batches)
        await cbs.on_predict_end({})
