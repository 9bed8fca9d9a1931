"""Run under mpiexec: train the scenario data-parallel; rank 0 saves weights and history.

Usage: train.py OPTIMIZER DTYPE BATCH OUT.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _scenario import data, fit_kwargs, model  # noqa: E402

import aiofit  # noqa: E402
from aiofit.distributed import DataParallel  # noqa: E402


def main() -> None:
    optimizer, dtype, batch, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    strategy = DataParallel(timeout=60)
    # Ranks start from different weights: the broadcast must make them equal.
    net = model(optimizer, dtype, seed=0 if strategy.rank == 0 else 1000 + strategy.rank)
    x, y, _, _ = data()
    history = aiofit.run(net.fit(x, y, strategy=strategy, **fit_kwargs(batch)))
    weights = net.get_weights()
    rank_weights = strategy.comm._comm.gather(weights, root=0)
    if strategy.is_primary:
        arrays = {f"w{i}": w for i, w in enumerate(weights)}
        arrays |= {f"h_{k}": np.asarray(v) for k, v in history.history.items()}
        spread = max(float(np.max(np.abs(a - b))) for other in rank_weights
                     for a, b in zip(weights, other, strict=True))  # fmt: skip
        np.savez(out, spread=spread, ranks=strategy.size, **arrays)


if __name__ == "__main__":
    main()
