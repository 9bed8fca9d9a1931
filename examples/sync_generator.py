"""Train from a plain (sync) generator: aiofit pulls it in a worker thread.

A blocking generator (reading files, a database cursor, a queue) never stalls
the event loop; here it reads the digits back from CSV text, a line at a time.

Run: ``python examples/sync_generator.py``
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np

import aiofit
from aiofit import datasets, layers


def csv_batches(text: str, batch_size: int = 64) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Parse ``label,pixel0,...,pixel63`` lines into batches (blocking work)."""
    rows: list[list[float]] = []
    for line in io.StringIO(text):
        rows.append([float(v) for v in line.split(",")])
        if len(rows) == batch_size:
            block = np.array(rows, dtype=np.float32)
            yield block[:, 1:], block[:, 0].astype(np.int64)
            rows = []
    if rows:
        block = np.array(rows, dtype=np.float32)
        yield block[:, 1:], block[:, 0].astype(np.int64)


class CsvDataset:
    """Re-iterable: each epoch gets a fresh generator over the same text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return csv_batches(self.text)


async def main() -> None:
    x, y = datasets.load_digits()
    text = "".join(f"{label}," + ",".join(f"{v:.4f}" for v in row) + "\n"
                   for row, label in zip(x, y, strict=True))
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(32, activation="relu"),
         layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = await model.fit(CsvDataset(text), epochs=5, verbose=2)
    print(f"final training accuracy {history.history['accuracy'][-1]:.4f}")


if __name__ == "__main__":
    aiofit.run(main())
