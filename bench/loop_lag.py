"""Event-loop lag while training: can the loop still serve other tasks?

A ticker task on the same loop sleeps 1 ms in a loop and records how late each
wake-up is, while ``fit`` trains the 784-512-256-10 MLP at batch 512. Target:
p99 lag <= 2 ms. For contrast it also records the lag on an idle loop (the
timer's own granularity) and while the same steps run inline on the loop, which
is what the engine exists to avoid, and while the same steps run in one plain
thread with no engine at all: the floor that the GIL and the CPU share impose.
Last, fit again with BLAS limited to ``cores - 1`` threads (threadpoolctl): when
BLAS takes every core, the loop's thread waits for a core, whatever the engine does.

Run: ``python -m bench.loop_lag [--quick]``, or ``python -m bench``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np

from aiofit.engine import fit
from bench._models import MLP_SIZES, backends, default_backend, mlp, run_on
from bench._report import format_table, make_row, pick

PERIOD = 1e-3
TARGET_P99_MS = 2.0
_EPOCH_BATCHES = 8  # the array holds this many batches; epochs repeat it
LABELS = {
    "idle": "idle loop (timer granularity)",
    "fit": "during fit",
    "thread": "same steps in one plain thread (floor: GIL + CPU)",
    "fit_blas": "during fit, BLAS limited to cores - 1 threads",
    "inline": "same steps inline on the loop (don't)",
}


async def ticker(lags: list[float], stop: anyio.Event) -> None:
    """Sleep ``PERIOD`` until ``stop`` is set, recording each wake-up's lateness."""
    while not stop.is_set():
        start = time.perf_counter()
        await anyio.sleep(PERIOD)
        lags.append(time.perf_counter() - start - PERIOD)


async def with_ticker(work: Callable[[], Awaitable[None]]) -> list[float]:
    """The ticker's lags while ``work()`` runs on the same loop."""
    lags: list[float] = []
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker, lags, stop)
        try:
            await work()
        finally:
            stop.set()
    return lags


def _data(batch: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((batch * _EPOCH_BATCHES, sizes[0]), dtype=np.float32)
    return x, rng.integers(0, sizes[-1], len(x))


def lags_during(
    mode: str, backend: str, steps: int, batch: int, sizes: tuple[int, ...]
) -> list[float]:
    """Lags while training ``steps`` batches; ``mode`` is a key of :data:`LABELS`."""
    model = mlp(sizes=sizes)
    x, y = _data(batch, sizes)
    model.train_on_batch(x[:batch], y[:batch])  # first-step allocations are not lag

    def one_step(i: int) -> None:
        j = i % _EPOCH_BATCHES * batch
        model.train_on_batch(x[j : j + batch], y[j : j + batch])

    def steps_in_a_row() -> None:
        for i in range(steps):
            one_step(i)

    async def via_fit() -> None:
        epochs = max(1, steps // _EPOCH_BATCHES)
        await fit(model, x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False)

    async def thread() -> None:
        await anyio.to_thread.run_sync(steps_in_a_row)

    async def inline() -> None:  # the anti-pattern: numpy on the loop itself
        for i in range(steps):
            one_step(i)
            await anyio.lowlevel.checkpoint()

    async def idle() -> None:
        await anyio.sleep(0.3)

    work = {"fit": via_fit, "fit_blas": via_fit, "thread": thread, "inline": inline,
            "idle": idle}[mode]  # fmt: skip
    if mode != "fit_blas":
        return run_on(backend, lambda: with_ticker(work))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(max(1, (os.cpu_count() or 2) - 1), user_api="blas"):
        return run_on(backend, lambda: with_ticker(work))


def _row(mode: str, backend: str, lags: list[float], steps: int) -> dict[str, Any]:
    ms = np.asarray(lags or [np.nan]) * 1e3
    p50, p99, worst = np.percentile(ms, 50), np.percentile(ms, 99), ms.max()
    label = LABELS[mode]
    during_fit = mode == "fit"  # the BLAS-limited run is advice, not the target
    return make_row(
        "event-loop lag (1 ms ticker)",
        f"{label}, {backend}" + (f", {steps} steps" if mode != "idle" else ""),
        f"p50 {p50:.2f} / p99 {p99:.2f} / max {worst:.2f} ms ({len(lags)} ticks)",
        target=f"p99 <= {TARGET_P99_MS:g} ms" if during_fit else "-",
        passed=bool(p99 <= TARGET_P99_MS) if during_fit else None,
        median=float(p99), spread=None, unit="ms p99 lag",
        p50_ms=float(p50), p99_ms=float(p99), max_ms=float(worst), ticks=len(lags),
    )  # fmt: skip


def run(level: str = "full") -> list[dict[str, Any]]:
    """Lag during fit on every installed loop; idle and inline on the default loop."""
    sizes = pick(level, (32, 16, 4), MLP_SIZES, MLP_SIZES)
    batch = pick(level, 16, 512, 512)
    steps = pick(level, 8, 64, 320)
    default = default_backend()
    loops = [default] if level == "smoke" else list(backends())
    rows = [_row("idle", default, lags_during("idle", default, 0, batch, sizes), 0)]
    for backend in loops:
        rows.append(_row("fit", backend, lags_during("fit", backend, steps, batch, sizes), steps))
    lags = lags_during("thread", default, steps, batch, sizes)
    rows.append(_row("thread", default, lags, steps))
    if level != "smoke" and importlib.util.find_spec("threadpoolctl") is not None:
        # With every core busy in BLAS the loop's thread waits for a core, not the engine.
        lags = lags_during("fit_blas", default, steps, batch, sizes)
        rows.append(_row("fit_blas", default, lags, steps))
    inline_steps = max(8, steps // 4)
    lags = lags_during("inline", default, inline_steps, batch, sizes)
    rows.append(_row("inline", default, lags, inline_steps))
    return rows


def main() -> None:
    print(format_table(run("quick" if "--quick" in sys.argv else "full")))


if __name__ == "__main__":
    main()
