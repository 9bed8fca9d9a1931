"""A training run from a Redis stream for the exactly-once tests, run in a child process.

Usage: ``python _redis_child.py URL STREAM GROUP OUT LEDGER [BACKUP_DIR [KILL]]``

Trains a seeded Sequential (Dropout, Adam) for ``EPOCHS`` epochs of ``STEPS``
batches of ``BATCH`` entries read from ``STREAM`` as consumer ``worker`` of
``GROUP``, with ``BackupAndRestore(BACKUP_DIR, save_freq=SAVE_FREQ)`` when a folder
is given. Each entry's last input column is its number ``k`` times 2**-8 (exact in
float32), so the run appends to ``LEDGER``, after each trained batch, one line
``<global batch index> <k,k,...>``, flushed to the OS (it survives SIGKILL). With
``KILL`` it SIGKILLs itself at the end of that global batch (after the backup
callback ran). Otherwise it writes to ``OUT`` (an npz) the final weights, the
History and the first (epoch, batch) it trained.
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
from aiofit.sources import StreamField, from_redis_stream

EPOCHS = 4
STEPS = 5
BATCH = 8
SAVE_FREQ = 4
FEATURES = 4
FIELDS = {"x": StreamField("x", "float32", (FEATURES + 1,)), "y": StreamField("y", "int64", ())}


def entries() -> tuple[np.ndarray, np.ndarray]:
    """The samples the test XADDs, in order: entry ``k`` is ``(x[k], y[k])``."""
    n = EPOCHS * STEPS * BATCH
    rng = np.random.default_rng(42)
    x = rng.normal(size=(n, FEATURES + 1)).astype("float32")
    x[:, -1] = np.arange(n, dtype="float32") / 256
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return x, y


class Ledger(callbacks.Callback):
    """Appends each trained batch's entry numbers; kills the process at batch ``kill``."""

    def __init__(self, path: str, kill: int | None) -> None:
        super().__init__()
        self.file = open(path, "a", encoding="ascii")  # open for the whole run
        self.kill = kill
        self.epoch = -1
        self.first: tuple[int, int] | None = None
        self.numbers: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.first is None:
            self.first = (self.epoch, batch)
        step = self.epoch * STEPS + batch
        self.file.write(f"{step} {','.join(map(str, self.numbers))}\n")
        self.file.flush()
        if step == self.kill:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    url, stream, group, out, ledger_path = argv[:5]
    backup_dir = argv[5] if len(argv) > 5 else None
    kill = int(argv[6]) if len(argv) > 6 else None
    model = aiofit.Sequential(
        [layers.Input(shape=(FEATURES + 1,)), layers.Dense(16, activation="relu"),
         layers.Dropout(0.3), layers.Dense(3, activation="softmax")],
        seed=0,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ledger = Ledger(ledger_path, kill)
    train_on_batch = model.train_on_batch

    def recording_step(x: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> Any:
        ledger.numbers = [int(k) for k in np.rint(x[:, -1] * 256)]
        return train_on_batch(x, y, sample_weight)

    model.train_on_batch = recording_step  # type: ignore[method-assign]
    cbs: list[callbacks.Callback] = [ledger]
    if backup_dir is not None:
        cbs.insert(0, callbacks.BackupAndRestore(backup_dir, save_freq=SAVE_FREQ))
    data = from_redis_stream(url, stream, group, "worker", BATCH, fields=FIELDS, block_ms=200)
    history = aiofit.run(
        model.fit(data, epochs=EPOCHS, steps_per_epoch=STEPS, callbacks=cbs, verbose=0)
    )
    record = {"history": history.history, "epochs": history.epoch, "first": ledger.first}
    weights = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(out, record=np.frombuffer(json.dumps(record).encode(), np.uint8), **weights)


if __name__ == "__main__":
    main(sys.argv[1:])
