"""Engine overhead: ``aiofit.fit`` vs a bare synchronous loop over the same batches.

A synthetic model whose ``train_on_batch`` does ~1 ms (then ~0.1 ms) of small
numpy work, like a real step, is trained over in-memory arrays by a plain
``for`` loop and by ``fit`` on asyncio, uvloop and trio, interleaved round by
round. Prints the overhead per batch in microseconds and the throughput ratio
(bare time / fit time; the targets are >= 0.95 at 1 ms and >= 0.8 at 0.1 ms),
first with no callback between batches, then with one (lockstep).

Run: ``python bench/engine_overhead.py`` (about 20 s).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import anyio
import numpy as np

from aiofit.callbacks import Callback
from aiofit.engine import fit

BACKENDS = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}
# No callback between batches (steps queued ahead), then one batch-end callback
# (lockstep: one event-loop round trip per step).
CONTENDERS = [*BACKENDS, "asyncio lockstep", "uvloop lockstep", "trio lockstep"]


class BusyModel:
    """A Trainable whose step is ``repeats`` rounds of small numpy ops (holds the GIL)."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.w = np.full((16, 16), 0.01)
        self.stop_training = False

    @property
    def metrics_names(self) -> list[str]:
        return ["loss"]

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        h = x[:, :16]
        for _ in range(self.repeats):
            h = np.tanh(h @ self.w)
        return {"loss": float(h[0, 0])}

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        return self.train_on_batch(x, y)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def get_weights(self) -> list[np.ndarray]:
        return [self.w]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = weights[0]


def calibrate(target: float, x: np.ndarray) -> int:
    """Repeats that make one step take about ``target`` seconds."""
    model = BusyModel(50)
    start = time.perf_counter()
    for _ in range(50):
        model.train_on_batch(x, None)
    per_repeat = (time.perf_counter() - start) / (50 * 50)
    return max(1, round(target / per_repeat))


def bare(model: BusyModel, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        model.train_on_batch(x[i : i + batch], y[i : i + batch])
    return time.perf_counter() - start


class BatchListener(Callback):
    """A callback between batches: the engine must run each step in lockstep with it."""

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        pass


def with_fit(model: BusyModel, x: np.ndarray, y: np.ndarray, batch: int, contender: str) -> float:
    backend, _, mode = contender.partition(" ")
    name, options = BACKENDS[backend]
    callbacks = [BatchListener()] if mode == "lockstep" else []

    async def main() -> float:
        start = time.perf_counter()
        await fit(model, x, y, batch_size=batch, verbose=0, shuffle=False, callbacks=callbacks)
        return time.perf_counter() - start

    return anyio.run(main, backend=name, backend_options=options)


def measure(step: float, batches: int, rounds: int) -> None:
    batch = 32
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches * batch, 32))
    y = rng.normal(size=(batches * batch, 1))
    model = BusyModel(calibrate(step, x[:batch]))
    bare_times: list[float] = []
    ratios: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    overheads: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    for _ in range(rounds):
        for backend in CONTENDERS:
            # Each fit is paired with a bare run right before it: the machine's
            # speed drifts, so only ratios taken side by side mean anything.
            base = bare(model, x, y, batch)
            t = with_fit(model, x, y, batch, backend)
            bare_times.append(base)
            ratios[backend].append(base / t)
            overheads[backend].append((t - base) / batches * 1e6)
    per_batch = statistics.median(bare_times) / batches * 1e6
    print(
        f"step ~{step * 1e3:.1f} ms ({batches} batches x {rounds} rounds): "
        f"bare loop {per_batch:.0f} us/batch"
    )
    for backend in CONTENDERS:
        print(
            f"  {backend:17s} overhead {statistics.median(overheads[backend]):7.1f} us/batch"
            f"   ratio {statistics.median(ratios[backend]):.3f}"
            f"   (rounds: {min(ratios[backend]):.3f}..{max(ratios[backend]):.3f})"
        )


def main() -> None:
    quick = "--quick" in sys.argv
    measure(1e-3, batches=100 if quick else 150, rounds=3 if quick else 7)
    measure(1e-4, batches=500 if quick else 1000, rounds=3 if quick else 7)


if __name__ == "__main__":
    main()
