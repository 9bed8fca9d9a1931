"""The model really learns: an MLP on the shipped digits beats 95% held-out accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import aiofit
from aiofit import datasets
from aiofit.nn import Sequential, layers, optimizers


def test_mlp_learns_the_digits() -> None:
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=0)
    model = Sequential([layers.Input(shape=(64,)), layers.Dense(128, activation="relu"),
                        layers.Dropout(0.1), layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.003),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    first = model.test_on_batch(x_test, y_test)
    for _ in range(12):
        order = model.rng.permutation(len(x_train))
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            model.train_on_batch(x_train[batch], y_train[batch])
    logs = model.test_on_batch(x_test, y_test)
    predicted = model.predict_on_batch(x_test).argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    assert accuracy == logs["accuracy"]
    assert accuracy >= 0.95
    assert first["accuracy"] < 0.3  # an untrained 10-class model is near chance
    assert logs["loss"] < first["loss"] / 10


@pytest.mark.anyio
async def test_fit_through_the_engine_learns_and_matches_the_trainable_protocol() -> None:
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=1)
    model = Sequential([layers.Dense(64, activation="relu"),
                        layers.Dense(10, activation="softmax")], seed=1)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.003),
                  loss="sparse_categorical_crossentropy", metrics=["acc"])
    assert isinstance(model, aiofit.Trainable)
    history = await model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0,
                              validation_data=(x_test, y_test))
    assert list(history.history) == ["loss", "acc", "val_loss", "val_acc"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    logs = await model.evaluate(x_test, y_test, verbose=0)
    assert logs["acc"] == pytest.approx(history.history["val_acc"][-1])
    assert logs["acc"] >= 0.93
    predicted = await model.predict(x_test, batch_size=64, verbose=0)
    np.testing.assert_allclose(predicted, model.predict_on_batch(x_test), rtol=1e-6)
