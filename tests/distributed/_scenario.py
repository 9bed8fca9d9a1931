"""The training run the MPI tests compare: data, model and fit arguments (no MPI here)."""

from __future__ import annotations

from typing import Any

import numpy as np

import aiofit
from aiofit import layers, optimizers

SAMPLES = 203  # 203 = 12 * 16 + 11: the last global batch (11 rows) splits 5 / 6
FEATURES, CLASSES = 8, 3


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train x, y and validation x, y: a learnable 3-class problem."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(SAMPLES + 60, FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x[:SAMPLES], y[:SAMPLES], x[SAMPLES:], y[SAMPLES:]


def model(optimizer: str, dtype: str, seed: int | None = 0) -> aiofit.Sequential:
    """A small MLP compiled with SGD (momentum) or Adam."""
    net = aiofit.Sequential(
        [layers.Input(shape=(FEATURES,)), layers.Dense(16, activation="relu"),
         layers.Dense(CLASSES, activation="softmax")],
        seed=seed, dtype=dtype,
    )  # fmt: skip
    opt: Any = (optimizers.SGD(learning_rate=0.1, momentum=0.9) if optimizer == "sgd"
                else optimizers.Adam(learning_rate=0.01))  # fmt: skip
    net.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


def fit_kwargs(batch_size: int) -> dict[str, Any]:
    """The fit arguments; ``batch_size`` is per rank under MPI."""
    _, _, vx, vy = data()
    return {"batch_size": batch_size, "epochs": 3, "shuffle": True, "verbose": 0,
            "validation_data": (vx, vy)}  # fmt: skip
