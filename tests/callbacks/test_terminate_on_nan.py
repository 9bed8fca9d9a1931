"""TerminateOnNaN: stop (or raise) on a NaN or infinite batch loss."""

from __future__ import annotations

import math

import pytest

from aiofit.callbacks import CallbackList, TerminateOnNaN


class _Model:
    def __init__(self) -> None:
        self.stop_training = False


@pytest.mark.anyio
@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
async def test_non_finite_loss_stops_training(
    loss: float, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _Model()
    callbacks = CallbackList([TerminateOnNaN()], model=model)
    await callbacks.on_train_batch_end(0, {"batch": 0, "size": 2, "loss": 1.0})
    assert model.stop_training is False
    await callbacks.on_train_batch_end(1, {"batch": 1, "size": 2, "loss": loss})
    assert model.stop_training is True
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"


@pytest.mark.anyio
async def test_raise_error_names_the_batch_and_leaves_the_flag() -> None:
    model = _Model()
    callbacks = CallbackList([TerminateOnNaN(raise_error=True)], model=model)
    with pytest.raises(RuntimeError, match="at batch 7. Loss value: nan"):
        await callbacks.on_train_batch_end(7, {"batch": 7, "size": 2, "loss": math.nan})
    assert model.stop_training is False


@pytest.mark.anyio
async def test_finite_or_missing_loss_and_other_hooks_are_ignored() -> None:
    model = _Model()
    callbacks = CallbackList([TerminateOnNaN(raise_error=True)], model=model)
    await callbacks.on_train_batch_end(0, {"batch": 0, "size": 2, "loss": 1e30})
    await callbacks.on_train_batch_end(1, {"batch": 1, "size": 2})
    await callbacks.on_test_batch_end(0, {"batch": 0, "size": 2, "loss": math.nan})
    await callbacks.on_epoch_end(0, {"loss": math.nan})
    assert model.stop_training is False
