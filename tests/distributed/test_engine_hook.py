"""The engine's strategy hook, driven by a fake strategy (no MPI needed)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aiofit
from aiofit.callbacks import Callback
from aiofit.engine.strategy import FitInputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scenario import data, model  # noqa: E402


class FakeStrategy:
    """Steps through the model's own batch API; pretends peers asked to stop or ran out."""

    def __init__(self, stop_at: int | None = None, out_at: int | None = None) -> None:
        self.stop_at, self.out_at = stop_at, out_at
        self.calls: list[str] = []
        self.agreements = 0

    def prepare(self, model: Any, inputs: FitInputs) -> FitInputs:
        self.calls.append("prepare")
        return dataclasses.replace(inputs, verbose=0)

    async def begin(self, model: Any, worker: Any) -> None:
        self.calls.append("begin")

    async def train_step(self, worker: Any, model: Any, x: Any, y: Any, sw: Any) -> Any:
        self.calls.append("train")
        return await worker.run(model.train_on_batch, x, y, sw)

    async def test_step(self, worker: Any, model: Any, x: Any, y: Any, sw: Any) -> Any:
        self.calls.append("test")
        return await worker.run(model.test_on_batch, x, y, sw)

    async def any_rank(self, *flags: bool) -> tuple[bool, ...]:
        if len(flags) == 2 and flags[0] is False:  # a batch agreement (has a batch)
            self.agreements += 1
            out, stop = flags
            return (out or self.agreements == self.out_at, stop or self.agreements == self.stop_at)
        return flags


class Begins(Callback):
    def __init__(self, strategy: FakeStrategy) -> None:
        super().__init__()
        self.strategy = strategy

    def on_train_begin(self, logs: Any = None) -> None:
        self.strategy.calls.append("on_train_begin")


def fit(strategy: Any, **kwargs: Any) -> tuple[Any, Any]:
    net = model("sgd", "float32")
    x, y, vx, vy = data()
    kw: dict[str, Any] = {"batch_size": 50, "epochs": 2, "verbose": 0, "shuffle": False}
    history = aiofit.run(net.fit(x, y, strategy=strategy, **(kw | kwargs)))
    return net, history


def test_a_strategy_steps_in_place_of_the_model_and_trains_the_same() -> None:
    strategy = FakeStrategy()
    x, y, vx, vy = data()
    net, history = fit(strategy, validation_data=(vx, vy), callbacks=[Begins(strategy)])
    plain, plain_history = fit(None, validation_data=(vx, vy))
    for a, b in zip(net.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert history.history == plain_history.history
    assert strategy.calls[:3] == ["prepare", "on_train_begin", "begin"]
    assert strategy.calls.count("train") == 2 * 5  # 203 samples, batches of 50
    assert strategy.calls.count("test") == 2 * 2  # 60 validation samples


def test_a_peer_asking_to_stop_ends_the_run_after_the_same_batch() -> None:
    strategy = FakeStrategy(stop_at=3)  # the agreement before the third batch
    net, history = fit(strategy)
    assert strategy.calls.count("train") == 2
    assert net.stop_training is True
    assert len(history.epoch) == 1


def test_a_peer_out_of_batches_ends_the_epoch_but_not_the_run() -> None:
    strategy = FakeStrategy(out_at=3)
    net, history = fit(strategy)
    assert strategy.calls.count("train") == 2 + 5
    assert net.stop_training is False
    assert len(history.epoch) == 2


def test_a_strategy_must_implement_the_protocol() -> None:
    with pytest.raises(TypeError, match="strategy must implement"):
        fit(object())
