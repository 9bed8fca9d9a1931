"""Train from an indexable dataset whose batches take time to fetch.

``aget(i)`` (or a sync ``__getitem__``) is called for up to ``workers``
batches at once and the batches are delivered in order; ``on_epoch_end()``
runs after every epoch (here it reshuffles, like a Keras ``PyDataset``).

Run: ``python examples/indexable_dataset.py``
"""

from __future__ import annotations

import anyio
import numpy as np

import aiofit
from aiofit import datasets, layers


class SlowDigits:
    """Batches of the digits, each one 'downloaded' with 5 ms of latency."""

    def __init__(self, batch_size: int = 64, seed: int = 0) -> None:
        self.x, self.y = datasets.load_digits()
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(self.x))

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    async def aget(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        await anyio.sleep(0.005)  # stand-in for object storage or a feature service
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.rng.shuffle(self.order)


async def main() -> None:
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(32, activation="relu"),
         layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = await model.fit(SlowDigits(), epochs=5, workers=4, verbose=2)
    print(f"final training accuracy {history.history['accuracy'][-1]:.4f}")


if __name__ == "__main__":
    aiofit.run(main())
