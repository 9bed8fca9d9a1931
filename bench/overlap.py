"""Overlap: fetching the next batch (latency L) while the step computes (C).

Two sources stand in for a network: an async generator that waits
``anyio.sleep(L)`` before each batch, and an indexable dataset whose ``aget``
does the same, read with ``workers=4``. The model's step is float32 matmuls
sized to about C (BLAS releases the GIL, as in a real numpy step). Perfect
overlap trains ``steps`` batches in ``max(L, C) x steps`` (``max(L/4, C)``
with 4 workers); a loop without overlap takes the serial sum ``(L + C) x steps``.
C is re-measured by a plain loop right before and right after each fit (their
mean is the C of that round), so the ratio does not drift with the machine's
load. Target: wall <= 1.1x the ideal.

Run: ``python -m bench.overlap [--quick]``, or ``python -m bench``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import numpy as np

from aiofit.engine import fit
from bench._models import MatmulModel, default_backend, matmul_model, run_on, time_steps
from bench._report import format_table, make_row, median_spread, pick

PAIRS_MS = ((5.0, 5.0), (10.0, 2.0), (2.0, 10.0))
WORKERS = 4
_X = np.zeros((8, 4), np.float32)
_Y = np.zeros((8, 1), np.float32)


async def slow_stream(latency: float, steps: int) -> AsyncIterator[tuple[Any, Any]]:
    """An async generator that waits ``latency`` before each of its ``steps`` batches."""
    for _ in range(steps):
        await anyio.sleep(latency)
        yield _X, _Y


class SlowDataset:
    """An indexable dataset whose ``aget`` waits ``latency`` per batch."""

    def __init__(self, latency: float, steps: int) -> None:
        self.latency, self.steps = latency, steps

    def __len__(self) -> int:
        return self.steps

    async def aget(self, index: int) -> tuple[Any, Any]:
        await anyio.sleep(self.latency)
        return _X, _Y


def fit_seconds(model: MatmulModel, source: Any, workers: int, backend: str) -> float:
    """Wall time of one epoch of ``fit`` over ``source``."""

    async def main() -> float:
        start = time.perf_counter()
        await fit(model, source, verbose=0, shuffle=False, workers=workers)
        return time.perf_counter() - start

    return run_on(backend, main)


def measure(
    latency: float, compute: float, workers: int, steps: int, rounds: int, backend: str
) -> dict[str, Any]:
    """One (L, C, workers) case over ``rounds`` side-by-side rounds, as a row."""
    model = matmul_model(compute)
    ratios, serials, computes = [], [], []
    fetch = latency / workers
    for _ in range(rounds):
        source = SlowDataset(latency, steps) if workers > 1 else slow_stream(latency, steps)
        before = time_steps(model, steps)
        wall = fit_seconds(model, source, workers, backend)
        c = (before + time_steps(model, steps)) / (2 * steps)  # the steps' time around the fit
        ideal = max(fetch, c) * steps
        ratios.append(wall / ideal)
        serials.append((fetch + c) * steps / ideal)
        computes.append(c)
    ratio, spread = median_spread(ratios)
    serial = median_spread(serials)[0]
    source_name = f"indexable, workers={workers}" if workers > 1 else "async generator"
    ideal_name = "max(L/4, C)" if workers > 1 else "max(L, C)"
    return make_row(
        "overlap (wall / ideal)",
        f"L={latency * 1e3:g} ms, C={compute * 1e3:g} ms, {source_name}, {backend}",
        f"{ratio:.3f}x {ideal_name} (±{spread * 100:.0f}%); serial sum: {serial:.2f}x; "
        f"C measured {median_spread(computes)[0] * 1e3:.1f} ms",
        target="<= 1.1x", passed=ratio <= 1.1, median=ratio, spread=spread,
        unit=f"x {ideal_name} x steps", serial_ratio=serial, steps=steps, rounds=rounds,
        measured_c_ms=median_spread(computes)[0] * 1e3,
    )  # fmt: skip


def run(level: str = "full") -> list[dict[str, Any]]:
    """Every (L, C) pair, from a generator and from an indexable dataset with 4 workers."""
    backend = default_backend()
    pairs = pick(level, PAIRS_MS[:1], PAIRS_MS, PAIRS_MS)
    steps = pick(level, 4, 40, 120)
    rounds = pick(level, 1, 3, 5)
    return [
        measure(l_ms / 1e3, c_ms / 1e3, workers, steps, rounds, backend)
        for l_ms, c_ms in pairs
        for workers in (1, WORKERS)
    ]


def main() -> None:
    print(format_table(run("quick" if "--quick" in sys.argv else "full")))


if __name__ == "__main__":
    main()
