"""Side-by-side timing: A/B alternated over several rounds, median and spread.

The machines here are shared and noisy, so absolute times drift; ratios measured
in the same run, interleaved, are what the benchmarks report.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench._report import median_spread


@dataclass
class Timing:
    """Per-call seconds of one contender over all rounds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def interleave(
    contenders: dict[str, Callable[[], object]],
    *,
    calls: int,
    rounds: int,
    warmup: int = 3,
    settle: float = 0.0,
    prime: int = 0,
) -> dict[str, Timing]:
    """Time each contender ``calls`` times per round, alternating them round by round.

    ``settle`` seconds pass, untimed, before each contender's calls: thread pools
    spin-wait for a while after their last job (OpenBLAS's ~0.1 s, PyTorch's OpenMP
    threads longer), and whoever runs next would pay for it on the same cores
    (measured: the matmul floor ran 9.5% slower right after PyTorch's step).
    ``prime`` untimed calls then start each block, so that every timed call follows
    a call of its own, as a training step follows the previous step: short blocks
    would otherwise time the caches refilling after the other contenders.
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
            for _ in range(prime):
                fn()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            timings[name].samples.append((time.perf_counter() - t0) / calls)
    return timings


def paired_ratio(a: Timing, b: Timing) -> tuple[float, float]:
    """``a``'s time over ``b``'s, taken round by round: the median of the per-round
    ratios and their spread (half the inter-quartile range, relative).

    Both ran in the same round, seconds apart, so the machine's drift between
    rounds cancels in each ratio; a ratio of the two medians would keep it.
    """
    return median_spread(round_ratios(a, b))


def round_ratios(a: Timing, b: Timing) -> list[float]:
    """``a``'s time over ``b``'s in each round (see :func:`paired_ratio`)."""
    return [x / y for x, y in zip(a.samples, b.samples, strict=True)]


def ratio_cell(ratio: float, spread: float) -> str:
    """A ratio and its relative spread as a table cell, e.g. ``1.43x (±3%)``."""
    return f"{ratio:.2f}x (±{spread * 100:.0f}%)"
