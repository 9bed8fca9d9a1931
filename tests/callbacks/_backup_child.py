"""A training run for the crash-and-resume tests, run in a child process.

Usage: ``python _backup_child.py OUT SOURCE [BACKUP_DIR] [KILL_EPOCH KILL_BATCH]``

Trains a seeded Sequential (Dropout, shuffle=True, Adam) on ``SOURCE`` ("arrays"
or "indexable"), with ``BackupAndRestore(BACKUP_DIR, save_freq=3)`` when a folder
is given. With a kill point it SIGKILLs itself at the end of that batch (after the
backup callback ran), as a crash would. Otherwise it writes to ``OUT`` (an npz)
the final weights, the History and the first (epoch, batch) it trained.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import numpy as np

import aiofit
from aiofit import callbacks, layers

EPOCHS = 4
BATCH = 8


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    x = rng.normal(size=(100, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return x, y


class Batches:
    """An indexable dataset: item ``i`` is batch ``i``."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return -(-len(self.x) // BATCH)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.x[i * BATCH : (i + 1) * BATCH], self.y[i * BATCH : (i + 1) * BATCH]


class Watch(callbacks.Callback):
    """Records the first batch trained; kills the process at ``kill`` (epoch, batch)."""

    def __init__(self, kill: tuple[int, int] | None) -> None:
        super().__init__()
        self.kill = kill
        self.epoch = -1
        self.first: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.first is None:
            self.first = (self.epoch, batch)
        if (self.epoch, batch) == self.kill:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    out, source = argv[0], argv[1]
    backup_dir = argv[2] if len(argv) > 2 else None
    kill = (int(argv[3]), int(argv[4])) if len(argv) > 4 else None
    model = aiofit.Sequential(
        [layers.Input(shape=(8,)), layers.Dense(16, activation="relu"), layers.Dropout(0.3),
         layers.Dense(3, activation="softmax")],
        seed=0,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data()
    watch = Watch(kill)
    cbs: list[callbacks.Callback] = [watch]
    if backup_dir is not None:
        cbs.insert(0, callbacks.BackupAndRestore(backup_dir, save_freq=3))
    if source == "arrays":
        fit = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=True, callbacks=cbs,
                        verbose=0)  # fmt: skip
    else:
        fit = model.fit(Batches(x, y), epochs=EPOCHS, shuffle=True, workers=2, callbacks=cbs,
                        verbose=0)  # fmt: skip
    history = aiofit.run(fit)
    record = {"history": history.history, "epochs": history.epoch, "first": watch.first}
    weights = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(out, record=np.frombuffer(json.dumps(record).encode(), np.uint8), **weights)


if __name__ == "__main__":
    main(sys.argv[1:])
