"""The ``python -m aiofit`` demo: learn the shipped handwritten digits, offline.

Trains a small MLP from the digits with a validation set and a Keras-style
progress bar, evaluates it on held-out data, prints the test accuracy and the
throughput, and saves the model.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import numpy as np

from . import datasets, layers
from .nn import Sequential

__all__ = ["build_model", "run_demo"]


def build_model(seed: int = 0) -> Sequential:
    """The demo's MLP: 64 -> 128 -> 64 -> 10, compiled with Adam."""
    model = Sequential(
        [
            layers.Input(shape=(64,)),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.1),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


async def run_demo(out_dir: Path, *, epochs: int = 15, verbose: int | str = "auto",
                   seed: int = 0) -> dict[str, float]:
    """Train, evaluate and save into ``out_dir`` (which must exist); return the test logs."""
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=seed)
    x_fit, x_val, y_fit, y_val = datasets.split(x_train, y_train, 0.1, seed=seed)
    model = build_model(seed)
    print(f"aiofit demo: {len(x_fit)} training, {len(x_val)} validation and "
          f"{len(x_test)} test images of handwritten digits (8x8, UCI, CC BY 4.0)")
    start = time.perf_counter()
    await model.fit(x_fit, y_fit, batch_size=32, epochs=epochs,
                    validation_data=(x_val, y_val), verbose=verbose)
    seconds = time.perf_counter() - start
    logs = await model.evaluate(x_test, y_test, verbose=0)
    path = out_dir / "digits-mlp.aiofit"
    await anyio.to_thread.run_sync(model.save, path)
    samples_per_s = epochs * len(x_fit) / seconds
    print(f"test accuracy: {logs['accuracy']:.4f} - test loss: {logs['loss']:.4f}")
    print(f"throughput: {samples_per_s:,.0f} samples/s ({seconds:.2f} s for {epochs} epochs)")
    print(f"model saved to {path} (reload with aiofit.load_model)")
    return {**logs, "samples_per_s": float(np.float64(samples_per_s))}
