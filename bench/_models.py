"""Models and loops the benchmarks share: a matmul-bound Trainable, the MLP, the backends."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import numpy as np

T = TypeVar("T")
MLP_SIZES = (784, 512, 256, 10)


def backends() -> dict[str, tuple[str, dict[str, Any]]]:
    """The event loops installed here: name -> (anyio backend, backend options)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {"asyncio": ("asyncio", {})}
    if importlib.util.find_spec("uvloop") is not None:
        found["uvloop"] = ("asyncio", {"use_uvloop": True})
    if importlib.util.find_spec("trio") is not None:
        found["trio"] = ("trio", {})
    return found


def default_backend() -> str:
    """The loop ``aiofit.run`` uses: uvloop when installed, else asyncio."""
    return "uvloop" if "uvloop" in backends() else "asyncio"


def run_on(backend: str, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` to completion on the named event loop."""
    name, options = backends()[backend]
    return anyio.run(fn, backend=name, backend_options=options)


class MatmulModel:
    """A Trainable whose step is ``repeats`` float32 matmuls: BLAS, so it releases the GIL.

    That is what a real numpy step mostly is, and what lets the event loop and
    the data sources run while it computes.
    """

    def __init__(self, repeats: int, n: int = 192) -> None:
        rng = np.random.default_rng(0)
        self.repeats = repeats
        self.a = rng.random((n, n), dtype=np.float32) / n
        self.w = rng.random((n, n), dtype=np.float32)
        self.out = np.empty((n, n), np.float32)
        self.stop_training = False
        self.steps = 0

    @property
    def metrics_names(self) -> list[str]:
        return ["loss"]

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        self.steps += 1
        for _ in range(self.repeats):
            np.matmul(self.a, self.w, out=self.out)
        return {"loss": float(self.out[0, 0])}

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        return {"loss": 0.0}

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def get_weights(self) -> list[np.ndarray]:
        return [self.w]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = weights[0]


def matmul_model(seconds: float) -> MatmulModel:
    """A :class:`MatmulModel` whose step takes about ``seconds`` on this machine, now."""
    probe = MatmulModel(20)
    probe.train_on_batch(None, None)  # warm the BLAS threads up
    start = time.perf_counter()
    for _ in range(5):
        probe.train_on_batch(None, None)
    per_matmul = (time.perf_counter() - start) / (5 * 20)
    return MatmulModel(max(1, round(seconds / per_matmul)))


def time_steps(model: Any, steps: int) -> float:
    """Seconds for ``steps`` calls of ``model.train_on_batch`` in a plain loop."""
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(None, None)
    return time.perf_counter() - start


def mlp(seed: int = 0, sizes: tuple[int, ...] = MLP_SIZES) -> Any:
    """The compiled relu MLP (softmax, sparse categorical cross-entropy, Adam)."""
    import aiofit
    from aiofit import layers

    hidden = [layers.Dense(n, activation="relu") for n in sizes[1:-1]]
    model = aiofit.Sequential(
        [layers.Input(shape=(sizes[0],)), *hidden,
         layers.Dense(sizes[-1], activation="softmax")],
        seed=seed,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
