"""Models, data and a scripted fit shared by the callback tests."""

from __future__ import annotations

from typing import Any

import numpy as np

import aiofit
from aiofit import layers, optimizers
from aiofit.callbacks import Callback, LambdaCallback


def linear_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of 3 normal features and their exact linear target."""
    x = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)


def sum_data() -> tuple[np.ndarray, np.ndarray]:
    """16 samples of 3 features; the target is their sum."""
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def _dense(optimizer: Any, metrics: list[str] | None = None) -> aiofit.Sequential:
    model = aiofit.Sequential([layers.Input(shape=(3,)), layers.Dense(1)], seed=0)
    model.compile(optimizer=optimizer, loss="mse", metrics=metrics)
    return model


def make_model() -> aiofit.Sequential:
    """Dense(1) on 3 features, SGD at 0.05, mean squared error."""
    return _dense(optimizers.SGD(learning_rate=0.05))


def small_model() -> aiofit.Sequential:
    """Dense(1) on 3 features, default SGD, mean squared error, with ``mae`` logged."""
    return _dense("sgd", ["mae"])


def fit_scripted(
    model: Any, script: list[float], *callbacks: Callback, data: tuple[Any, Any],
    key: str = "val_loss", epochs: int | None = None, **fit_kwargs: Any,
) -> tuple[aiofit.History, list[list[np.ndarray]]]:  # fmt: skip
    """Fit ``data`` with ``logs[key] = script[epoch]``; History and each epoch's end weights.

    A LambdaCallback ahead of ``callbacks`` writes the scripted value (every
    callback gets the same logs dict, in list order), so what a monitoring
    callback decides can be worked out by hand from ``script``. ``fit_kwargs``
    default to batches of 4, unshuffled.
    """
    seen: list[list[np.ndarray]] = []

    def inject(epoch: int, logs: dict[str, Any]) -> None:
        logs[key] = script[epoch]
        seen.append(model.get_weights())

    fit_kwargs = {"batch_size": 4, "shuffle": False, **fit_kwargs}
    history = aiofit.run(
        aiofit.fit(model, *data, epochs=epochs or len(script), verbose=0,
                   callbacks=[LambdaCallback(on_epoch_end=inject), *callbacks], **fit_kwargs)
    )  # fmt: skip
    return history, seen


def assert_weights_equal(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(a, e)


class StubModel:
    """A Trainable with no optimizer and no ``save``: its batches log ``loss`` 1.0.

    Each train step adds 1 to its single weight and to ``steps``.
    """

    def __init__(self, metrics_names: list[str] | None = None) -> None:
        self.w = np.zeros(1)
        self.stop_training = False
        self.metrics_names = metrics_names or ["loss"]
        self.steps = 0

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        self.steps += 1
        self.w = self.w + 1
        return {"loss": 1.0}

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        return {"loss": 1.0}

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return np.zeros(len(x))

    def get_weights(self) -> list[np.ndarray]:
        return [self.w.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = np.array(weights[0])


class Crash(Exception):
    """What the crashing callback raises."""


class CrashAt(Callback):
    """Raises :class:`Crash` at the end of batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.at, self.epoch = (epoch, batch), -1

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if (self.epoch, batch) == self.at:
            raise Crash(f"crash at {self.at}")
