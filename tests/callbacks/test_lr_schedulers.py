"""LearningRateScheduler and ReduceLROnPlateau against Keras 3's documented behaviour."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
import pytest

import aiofit
from aiofit import layers, optimizers
from aiofit.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
)

from . import conftest
from .conftest import StubModel

X = np.arange(100, dtype=np.float32).reshape(5, 20) / 100  # unscaled (as in Keras) SGD overflows
Y = np.zeros((5, 10), dtype=np.float32)


def make_model(learning_rate: float = 0.01) -> aiofit.Sequential:
    model = aiofit.Sequential([layers.Input(shape=(20,)), layers.Dense(10)], seed=0)
    model.compile(optimizer=optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


class RateSpy(Callback):
    """Records the optimizer's learning rate at the first batch of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.rates: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch == 0:
            self.rates.append(self.model.optimizer.learning_rate)


def fit(model: Any, epochs: int, *callbacks: Callback, **kwargs: Any) -> aiofit.History:
    return aiofit.run(model.fit(X, Y, epochs=epochs, verbose=0, callbacks=list(callbacks),
                                **kwargs))  # fmt: skip


def keras_doc_schedule(epoch: int, lr: float) -> float:
    return lr if epoch < 10 else lr * math.exp(-0.1)


def test_the_keras_docstring_example() -> None:
    model = make_model()
    spy = RateSpy()
    history = fit(model, 15, LearningRateScheduler(keras_doc_schedule), spy)
    assert round(model.optimizer.learning_rate, 5) == 0.00607
    expected = [0.01] * 10 + [0.01 * math.exp(-0.1 * k) for k in range(1, 6)]
    assert history.history["learning_rate"] == pytest.approx(expected, rel=1e-12)
    assert spy.rates == history.history["learning_rate"]  # the rate really used


def test_a_one_argument_schedule_gets_the_epoch() -> None:
    model = make_model()
    history = fit(model, 3, LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)),
                  initial_epoch=1)  # fmt: skip
    assert history.epoch == [1, 2]
    assert history.history["learning_rate"] == [0.05, 0.1 / 3]


@pytest.mark.anyio
async def test_an_async_schedule_is_awaited_before_the_epoch() -> None:
    async def schedule(epoch: int, lr: float) -> float:
        await anyio.lowlevel.checkpoint()
        return lr * 0.5

    model, spy = make_model(0.08), RateSpy()
    history = await model.fit(X, Y, epochs=3, verbose=0,
                              callbacks=[LearningRateScheduler(schedule), spy])  # fmt: skip
    assert history.history["learning_rate"] == [0.04, 0.02, 0.01]
    assert spy.rates == [0.04, 0.02, 0.01]


@pytest.mark.anyio
async def test_an_async_one_argument_schedule() -> None:
    async def schedule(epoch: int) -> float:
        await anyio.lowlevel.checkpoint()
        return [0.3, 0.2][epoch]

    history = await make_model().fit(X, Y, epochs=2, verbose=0,
                                     callbacks=[LearningRateScheduler(schedule)])  # fmt: skip
    assert history.history["learning_rate"] == [0.3, 0.2]


def test_a_schedule_returning_a_non_number_is_refused() -> None:
    with pytest.raises(ValueError, match=r"should be a float. Received: 'fast'"):
        fit(make_model(), 1, LearningRateScheduler(lambda epoch, lr: "fast"))


def test_a_negative_rate_is_refused_by_the_optimizer() -> None:
    with pytest.raises(ValueError, match=r"non-negative.*Received: learning_rate=-1"):
        fit(make_model(), 1, LearningRateScheduler(lambda epoch, lr: -1.0))


def test_a_type_error_inside_the_schedule_is_not_swallowed() -> None:
    # Keras retries schedule(epoch) on any TypeError; here the real error surfaces.
    calls: list[tuple[Any, ...]] = []

    def schedule(epoch: int, lr: float) -> float:
        calls.append((epoch, lr))
        return lr + "oops"  # type: ignore[operator,no-any-return]

    with pytest.raises(TypeError, match="unsupported operand"):
        fit(make_model(), 1, LearningRateScheduler(schedule))
    assert calls == [(0, 0.01)]


def test_a_schedule_of_the_wrong_shape_is_refused_up_front() -> None:
    with pytest.raises(TypeError, match=r"`\(epoch, lr\)` or `\(epoch\)`"):
        LearningRateScheduler(lambda epoch, lr, extra: lr)
    with pytest.raises(TypeError, match=r"must be callable. Received: schedule=0.1"):
        LearningRateScheduler(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("callback", [
    LearningRateScheduler(lambda epoch, lr: lr), ReduceLROnPlateau(monitor="loss"),
], ids=["scheduler", "plateau"])  # fmt: skip
def test_a_model_without_optimizer_fails_before_training(callback: Callback) -> None:
    model = StubModel()  # no optimizer
    with pytest.raises(ValueError, match=r"compile the model first. Received: optimizer=None"):
        aiofit.run(aiofit.fit(model, X, Y, verbose=0, callbacks=[callback]))
    assert model.steps == 0


def test_scheduler_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    fit(make_model(), 1, LearningRateScheduler(lambda epoch, lr: 0.5, verbose=1))
    assert (
        "Epoch 1: LearningRateScheduler setting learning rate to 0.5." in capsys.readouterr().out
    )


# ---------------------------------------------------------------- ReduceLROnPlateau


# One batch per epoch, shuffled, as ``fit`` above.
fit_scripted = partial(conftest.fit_scripted, data=(X, Y), batch_size=None, shuffle=True)


def test_plateau_reduces_after_patience_epochs_without_improvement() -> None:
    # e0 best 1.0; e1, e2 no gain: reduce at e2; e3 best 0.5; e4, e5 no gain: reduce at e5.
    model, spy = make_model(0.1), RateSpy()
    reduce = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0)
    history, _ = fit_scripted(model, [1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8], reduce, spy)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    assert spy.rates == history.history["learning_rate"]
    assert model.optimizer.learning_rate == 0.025
    assert (reduce.best, reduce.wait) == (0.5, 1)


def test_plateau_default_min_delta_ignores_tiny_gains() -> None:
    reduce = ReduceLROnPlateau(factor=0.5, patience=1)
    history, _ = fit_scripted(make_model(0.1), [1.0, 0.99995, 0.9], reduce)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05]  # e1 counted as no gain
    assert reduce.best == 0.9


def test_plateau_cooldown_pauses_the_count() -> None:
    # patience 1, cooldown 2: reductions at e1, e3, e5 (e2, e4, e6 are cooldown epochs).
    reduce = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    history, _ = fit_scripted(make_model(0.1), [1.0] * 7, reduce)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]


def test_plateau_never_goes_below_min_lr() -> None:
    reduce = ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.005)
    history, _ = fit_scripted(make_model(0.1), [1.0] * 5, reduce)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.01, 0.005, 0.005])


def test_plateau_auto_mode_maximizes_accuracy() -> None:
    reduce = ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1)
    history, _ = fit_scripted(make_model(0.1), [0.5, 0.6, 0.55, 0.7], reduce, key="val_accuracy")
    assert history.history["learning_rate"] == [0.1, 0.1, 0.1, 0.05]


def test_plateau_resets_for_each_fit() -> None:
    reduce = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0)
    fit_scripted(make_model(0.1), [0.1, 0.2], reduce)  # wait 1, best 0.1
    history, _ = fit_scripted(make_model(0.1), [1.0, 1.0], reduce)
    # A carried-over best 0.1 and wait 1 would have reduced at e0 of this run.
    assert history.history["learning_rate"] == [0.1, 0.1]
    assert (reduce.best, reduce.wait) == (1.0, 1)


def test_plateau_missing_monitor_warns_and_still_logs_the_rate() -> None:
    with pytest.warns(UserWarning, match=r"`val_loss` which is not available"):
        history = fit(make_model(0.1), 2, ReduceLROnPlateau(patience=0))
    assert history.history["learning_rate"] == [0.1, 0.1]


def test_plateau_and_early_stopping_see_the_same_logs() -> None:
    stop = EarlyStopping(monitor="learning_rate", mode="min", patience=0)
    reduce = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0)
    history, _ = fit_scripted(make_model(0.1), [1.0, 1.0, 1.0, 1.0], reduce, stop)
    # learning_rate (logged before each reduction): 0.1, 0.1 -> no gain at e1: stop.
    assert history.epoch == [0, 1]


def test_plateau_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    fit_scripted(make_model(0.1), [1.0, 1.0], ReduceLROnPlateau(factor=0.5, patience=1,
                                                                verbose=1))  # fmt: skip
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05." in capsys.readouterr().out


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"factor": 1.0}, r"factor >= 1.0.*Received: factor=1.0"),
    ({"factor": -0.5}, r"Received: factor=-0.5"),
    ({"patience": -1}, r"Received: patience=-1"),
    ({"cooldown": 0.5}, r"Received: cooldown=0.5"),
    ({"mode": "avg"}, r"Received: mode='avg'"),
    ({"min_lr": None}, r"Received: min_lr=None"),
])  # fmt: skip
def test_plateau_bad_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ReduceLROnPlateau(**kwargs)
