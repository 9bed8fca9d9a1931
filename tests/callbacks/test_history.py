"""History records exactly the logs given to on_epoch_end."""

from __future__ import annotations

from typing import Any

import pytest

from aiofit.callbacks import Callback, CallbackList, History


class _Model:
    stop_training = False


def test_records_each_epochs_logs_in_order() -> None:
    history = History()
    history.on_train_begin({})
    history.on_epoch_end(0, {"loss": 0.9, "accuracy": 0.5})
    history.on_epoch_end(1, {"loss": 0.4, "accuracy": 0.75})
    assert history.epoch == [0, 1]
    assert history.history == {"loss": [0.9, 0.4], "accuracy": [0.5, 0.75]}


def test_epoch_indices_follow_initial_epoch() -> None:
    history = History()
    history.on_train_begin()
    history.on_epoch_end(2, {"loss": 1.0})
    history.on_epoch_end(3, {"loss": 0.5})
    assert history.epoch == [2, 3]
    assert history.history == {"loss": [1.0, 0.5]}


def test_validation_keys_only_on_validated_epochs_as_keras() -> None:
    history = History()
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 1.0})
    history.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.7})
    assert history.history == {"loss": [1.0, 0.5], "val_loss": [0.7]}


def test_on_train_begin_resets_so_a_history_can_be_reused() -> None:
    history = History()
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 1.0})
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 2.0})
    assert history.epoch == [0]
    assert history.history == {"loss": [2.0]}


def test_empty_before_training_and_with_missing_logs() -> None:
    history = History()
    assert history.history == {}
    assert history.epoch == []
    history.on_epoch_end(0, None)
    assert history.epoch == [0]
    assert history.history == {}


@pytest.mark.anyio
async def test_history_is_last_so_keys_added_by_callbacks_are_recorded() -> None:
    class AddsLearningRate(Callback):
        async def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs["learning_rate"] = 0.01 / (epoch + 1)

    model = _Model()
    callbacks = CallbackList(
        [AddsLearningRate()], add_history=True, model=model, epochs=2, steps=3, verbose=0
    )
    history = callbacks.history
    assert isinstance(history, History)
    assert callbacks.callbacks[-1] is history
    await callbacks.on_train_begin()
    await callbacks.on_epoch_end(0, {"loss": 0.5})
    await callbacks.on_epoch_end(1, {"loss": 0.25})
    assert history.history == {"loss": [0.5, 0.25], "learning_rate": [0.01, 0.005]}
    assert history.params == {"epochs": 2, "steps": 3, "verbose": 0}
    assert history.model is model
    assert model.history is history  # type: ignore[attr-defined]


def test_repr_shows_the_record() -> None:
    history = History()
    history.on_epoch_end(0, {"loss": 1.5})
    assert repr(history) == "History(epoch=[0], history={'loss': [1.5]})"
