"""Data-parallel training over MPI: the same script on 1 process or on N.

Run: ``mpiexec -n 2 python -m mpi4py examples/distributed_mnist_like.py``
(needs ``pip install "aiofit[mpi]"``), or ``python examples/distributed_mnist_like.py``
as one process, unchanged. ``batch_size`` is per rank: 2 ranks train on batches of
2 * 32 digits, each rank computing the gradients of its 32; only rank 0 prints and
writes the checkpoint, and every rank reports the same global figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiofit
from aiofit import callbacks, datasets, layers
from aiofit.distributed import DataParallel


async def main() -> None:
    strategy = DataParallel()
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=0)
    model = aiofit.Sequential(
        [
            layers.Input(shape=(64,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with tempfile.TemporaryDirectory() as folder:
        best = Path(folder) / "best.aiofit"
        history = await model.fit(
            x_train,
            y_train,
            batch_size=32,
            epochs=15,
            validation_data=(x_test, y_test),
            verbose=2,
            strategy=strategy,
            callbacks=[
                callbacks.ModelCheckpoint(str(best), save_best_only=True),
                callbacks.EarlyStopping(monitor="val_loss", patience=3),
            ],
        )
        saved = "saved" if best.exists() else "not saved here"
    if strategy.is_primary:
        print(
            f"{strategy.size} rank(s) trained {len(history.epoch)} epochs; checkpoint {saved}; "
            f"val accuracy {history.history['val_accuracy'][-1]:.4f}"
        )


if __name__ == "__main__":
    aiofit.run(main())
