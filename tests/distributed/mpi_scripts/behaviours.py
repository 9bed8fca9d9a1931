"""Run under mpiexec: one behaviour of a data-parallel fit, chosen by argv[1].

* ``stop``: rank 1 alone sets ``stop_training`` after batch 2; every rank ends there.
* ``uneven``: per-rank streams of 5 and 3 batches; every epoch ends after 3.
* ``raise``: rank 1 raises at batch 2 (the job must end, the error printed once).
* ``sigkill``: rank 1 kills itself at batch 2 (the job must not hang).
* ``timeout``: rank 1 never joins; rank 0's collective times out.
* ``verbose``: verbose=2 on every rank: only rank 0 prints.
* ``backup DIR CRASH OUT``: BackupAndRestore in DIR; with CRASH=1 every rank
  raises at the end of epoch 2; rank 0 saves the final weights to OUT.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _scenario import data, model  # noqa: E402

import aiofit  # noqa: E402
from aiofit.callbacks import BackupAndRestore, Callback  # noqa: E402
from aiofit.distributed import DataParallel  # noqa: E402


class OnRank1(Callback):
    """Does ``action`` on rank 1 at the end of batch 2 of the first epoch."""

    def __init__(self, rank: int, action: str) -> None:
        super().__init__()
        self.rank, self.action = rank, action

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.rank != 1 or batch != 2:
            return
        if self.action == "stop":
            self.model.stop_training = True
        elif self.action == "raise":
            raise RuntimeError("boom on rank 1")
        elif self.action == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)


class CrashAt(Callback):
    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == 1:
            raise RuntimeError("crash after epoch 2")


async def stream(batches: int, rank: int) -> Any:
    x, y, _, _ = data(seed=rank)
    for i in range(batches):
        yield x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]


def main() -> None:
    what = sys.argv[1]
    strategy = DataParallel(timeout=1.0 if what == "timeout" else 60)
    rank = strategy.rank
    net = model("adam", "float32")
    x, y, _, _ = data()
    if what == "timeout":
        if rank == 1:
            time.sleep(5)
            return
        aiofit.run(net.fit(x, y, batch_size=8, verbose=0, strategy=strategy))
    elif what == "uneven":
        counts = []
        for _ in range(2):
            h = aiofit.run(net.fit(stream(5 if rank == 0 else 3, rank), epochs=1, verbose=0,
                                   strategy=strategy))  # fmt: skip
            counts.append(net.optimizer.iterations)
        print(f"rank {rank} iterations {counts} epochs {len(h.epoch)}", flush=True)
    elif what == "backup":
        folder, crash, out = sys.argv[2], sys.argv[3] == "1", sys.argv[4]
        callbacks: list[Any] = [BackupAndRestore(folder)] + ([CrashAt()] if crash else [])
        aiofit.run(net.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=callbacks,
                           strategy=strategy))  # fmt: skip
        if strategy.is_primary:
            np.savez(out, *net.get_weights())
    else:
        verbose = 2 if what == "verbose" else 0
        h = aiofit.run(net.fit(x, y, batch_size=8, epochs=2, verbose=verbose,
                               callbacks=[OnRank1(rank, what)], strategy=strategy))  # fmt: skip
        print(f"rank {rank} iterations {net.optimizer.iterations} epochs {len(h.epoch)} "
              f"stop {net.stop_training}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
