"""Side-by-side timing: A/B alternated over several rounds, median and spread.

The machines here are shared and noisy, so absolute times drift; ratios measured
in the same run, interleaved, are what the benchmarks report.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Timing:
    """Per-call seconds of one contender over all rounds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Half the inter-quartile range, relative to the median."""
        if len(self.samples) < 4:
            return 0.0
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / 2 / self.median


def interleave(
    contenders: dict[str, Callable[[], object]],
    *,
    calls: int,
    rounds: int,
    warmup: int = 3,
    settle: float = 0.0,
) -> dict[str, Timing]:
    """Time each contender ``calls`` times per round, alternating them round by round.

    ``settle`` seconds pass, untimed, before each contender's calls: thread pools
    spin-wait for a while after their last job (OpenBLAS's ~0.1 s, PyTorch's OpenMP
    threads longer), and whoever runs next would pay for it on the same cores
    (measured: the matmul floor ran 9.5% slower right after PyTorch's step).
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    timings = {name: Timing([]) for name in contenders}
    for r in range(rounds):
        order = list(contenders.items())
        if r % 2:  # alternate who goes first, so drift hits both alike
            order.reverse()
        for name, fn in order:
            time.sleep(settle)
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            timings[name].samples.append((time.perf_counter() - t0) / calls)
    return timings


def ratio_cell(ours: Timing, peer: Timing) -> str:
    """``peer/ours`` speed-up with the spread of both, e.g. ``1.43x (±3%)``."""
    spread = max(ours.spread, peer.spread) * 100
    return f"{peer.median / ours.median:.2f}x (±{spread:.0f}%)"
