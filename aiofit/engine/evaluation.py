"""``aiofit.evaluate`` and ``aiofit.predict``, and the test epoch fit's validation shares."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._exception_groups import original_errors
from ..callbacks import Callback, CallbackList
from .epoch_iterator import EpochIterator
from .logs import WeightedMeans, check_positive_int, check_trainable, resolve_verbose
from .loop import Phase, drive_epoch, open_pipeline
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
    phase = Phase(
        model.test_on_batch,
        "on_test_batch_begin",
        "on_test_batch_end",
        means.add,
        where=lambda i: f"batch {i} of the evaluation data",
        astep=astep,
        agree=agree,
    )
    await drive_epoch(data.epoch(index), worker, cbs, phase)
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
    data, cbs = _one_pass(
        model, "evaluate", (x, y, sample_weight), batch_size, steps, verbose, callbacks
    )
    with original_errors():
        async with open_pipeline(data) as worker:
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
    data, cbs = _one_pass(model, "predict", (x,), batch_size, steps, verbose, callbacks)
    outputs: list[np.ndarray] = []

    def collect(result: Any, size: int) -> None:
        outputs.append(result)

    with original_errors():
        await _predict_batches(model, cbs, data, collect)
    if not outputs:
        raise ValueError("predict got no batch: the input is empty. Received: x with no batches")
    return np.concatenate(outputs, axis=0)


def _one_pass(
    model: Any, role: str, arrays: tuple[Any, ...], batch_size: int | None, steps: int | None,
    verbose: int | str, callbacks: Callback | list[Callback] | None,
) -> tuple[EpochIterator, CallbackList]:  # fmt: skip
    """The checked arguments of evaluate or predict, as their data and callbacks."""
    check_trainable(model)
    check_positive_int("steps", steps)
    verbose = resolve_verbose(verbose)
    data = EpochIterator(
        *arrays,
        batch_size=batch_size,
        shuffle=False,
        steps_per_epoch=steps,
        rng=np.random.default_rng(0),
        role=role,
    )
    cbs = CallbackList(
        callbacks,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=1,
        steps=data.num_batches,
    )
    return data, cbs


async def _predict_batches(
    model: Any, cbs: CallbackList, data: EpochIterator, collect: Any
) -> None:
    async with open_pipeline(data) as worker:
        await cbs.on_predict_begin({})
        phase = Phase(
            lambda bx, _y, _w: model.predict_on_batch(bx),
            "on_predict_batch_begin",
            "on_predict_batch_end",
            collect,
            where=lambda i: f"batch {i} of the prediction data",
            predicting=True,
        )
        await drive_epoch(data.epoch(0), worker, cbs, phase)
        await cbs.on_predict_end({})
