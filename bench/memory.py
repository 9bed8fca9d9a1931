"""Memory: resident set size across 20 epochs of a long stream, and the pipeline's bound.

An endless async generator makes a fresh batch each time (as a network stream
would) and ``fit`` takes ``steps_per_epoch`` batches from it per epoch, for 20
epochs. RSS (after a ``gc.collect()``) is read at the end of each epoch: it must
stay flat, i.e. grow by at most 5% from epoch 1 to epoch 20 (a leak of one batch
per step would add ``batch bytes x steps`` per epoch). The source is instant and
the step real, so the pipeline's buffer fills up: it must never hold more than
``max_queue_size`` batches (``EpochIterator.statistics().max_ahead``); how far the
generator got ahead of the finished steps is shown too (the bound plus the one
step in flight). Peak RSS is the process's high-water mark, so the measurement
runs in a fresh interpreter, away from the other benchmarks' allocations.

Run: ``python -m bench.memory [--quick]``, or ``python -m bench``.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from aiofit.callbacks import Callback
from bench._models import default_backend, mlp, run_on
from bench._report import format_table, make_row, pick

EPOCHS = 20
MAX_QUEUE_SIZE = 10
GROWTH_LIMIT = 0.05
_ROOT = Path(__file__).resolve().parents[1]


def rss_bytes() -> int | None:
    """Resident memory of this process: psutil, else /proc/self/statm, else None."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int | None:
    """The most this process has held resident: VmHWM on Linux, else ``ru_maxrss``."""
    # Linux carries ru_maxrss over exec from the parent (here, a process with torch
    # loaded), so the interpreter's own high-water mark comes from /proc first.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # kB elsewhere


class _Counters:
    """Batches the generator has yielded, and steps the model has finished."""

    def __init__(self) -> None:
        self.yielded = self.finished = self.most_ahead = 0


async def endless(batch: int, features: int, classes: int, counts: _Counters
                  ) -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """A long stream: a fresh batch each time, forever."""
    rng = np.random.default_rng(0)
    while True:
        counts.yielded += 1
        counts.most_ahead = max(counts.most_ahead, counts.yielded - counts.finished)
        yield rng.random((batch, features), dtype=np.float32), rng.integers(0, classes, batch)


class _RssPerEpoch(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.rss: list[int | None] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        gc.collect()
        self.rss.append(rss_bytes())


def measure(level: str) -> dict[str, Any]:
    """Train the long stream for 20 epochs in this process; the raw figures."""
    from aiofit.engine import epoch_iterator, training

    sizes = pick(level, (32, 16, 4), (784, 128, 10), (784, 256, 10))
    batch, steps = pick(level, 16, 256, 256), pick(level, 3, 15, 60)
    epochs = pick(level, 3, EPOCHS, EPOCHS)
    model, counts, rss = mlp(sizes=sizes), _Counters(), _RssPerEpoch()
    step = model.train_on_batch

    def counted_step(*args: Any, **kwargs: Any) -> Any:
        try:
            return step(*args, **kwargs)
        finally:
            counts.finished += 1

    model.train_on_batch = counted_step
    opened: list[epoch_iterator.EpochIterator] = []

    class Recorded(epoch_iterator.EpochIterator):  # to read fit's own pipeline statistics
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    async def main() -> None:
        source = endless(batch, sizes[0], sizes[-1], counts)
        await training.fit(model, source, epochs=epochs, steps_per_epoch=steps, verbose=0,
                           callbacks=[rss], max_queue_size=MAX_QUEUE_SIZE)  # fmt: skip

    with mock.patch.object(training, "EpochIterator", Recorded):
        run_on(default_backend(), main)
    stats = opened[0].statistics()
    return {"rss": rss.rss, "peak": peak_rss_bytes(), "max_ahead": stats.max_ahead,
            "bound": stats.max_queue_size, "generator_ahead": counts.most_ahead,
            "epochs": epochs, "steps": steps, "batch_bytes": batch * sizes[0] * 4}  # fmt: skip


def run(level: str = "full") -> list[dict[str, Any]]:
    """Measure in a fresh interpreter (so peak RSS is this benchmark's), and report."""
    child = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", level],
        cwd=_ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if child.returncode != 0:
        raise RuntimeError(f"the memory benchmark's process failed: {child.stderr[-500:]}")
    return rows(json.loads(child.stdout.strip().splitlines()[-1]))


def rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """The report rows for the figures :func:`measure` returned."""
    mb = 2.0**20
    bench = "memory"
    bounded = m["max_ahead"] <= m["bound"]
    out = [make_row(
        bench, f"pipeline buffer, max_queue_size={m['bound']}",
        f"max {m['max_ahead']} batches read ahead (generator ahead of finished steps: "
        f"{m['generator_ahead']})",
        target=f"<= {m['bound']}", passed=bounded, median=float(m["max_ahead"]),
        unit="batches", generator_ahead=m["generator_ahead"],
    )]  # fmt: skip
    first, last = m["rss"][0], m["rss"][-1]
    if first is None or last is None:
        out.append(make_row(bench, "RSS across epochs", "skipped: no psutil and no /proc"))
        return out
    growth = (last - first) / first
    peak = f"; peak {m['peak'] / mb:.0f} MB" if m["peak"] else ""
    out.append(make_row(
        bench, f"RSS after epoch 1 vs {m['epochs']} ({m['steps']} steps/epoch, long stream)",
        f"{first / mb:.1f} -> {last / mb:.1f} MB ({growth * 100:+.1f}%){peak}",
        target=f"growth <= {GROWTH_LIMIT * 100:g}%", passed=growth <= GROWTH_LIMIT,
        median=growth, unit="relative RSS growth", rss_mb=[r / mb for r in m["rss"]],
        peak_mb=m["peak"] / mb if m["peak"] else None,
    ))  # fmt: skip
    return out


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(measure(sys.argv[sys.argv.index("--child") + 1])))
        return
    print(format_table(run("quick" if "--quick" in sys.argv else "full")))


if __name__ == "__main__":
    main()
