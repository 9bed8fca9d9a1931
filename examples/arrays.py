"""Train from numpy arrays: batching, shuffling and validation, Keras style.

Run: ``python examples/arrays.py``
"""

from __future__ import annotations

import aiofit
from aiofit import callbacks, datasets, layers


async def main() -> None:
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=0)
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(64, activation="relu"),
         layers.Dense(10, activation="softmax")],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = await model.fit(
        x_train, y_train, batch_size=32, epochs=20,
        validation_data=(x_test, y_test), verbose=2,
        callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=3,
                                           restore_best_weights=True)],
    )
    logs = await model.evaluate(x_test, y_test, verbose=0)
    print(f"trained {len(history.epoch)} epochs; test accuracy {logs['accuracy']:.4f}")


if __name__ == "__main__":
    aiofit.run(main())
