"""Shared fakes for the engine tests: a hand-written linear model and a recording callback."""

from __future__ import annotations

import copy
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import numpy as np
import pytest

from aiofit.callbacks import Callback

HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
    "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end",
)  # fmt: skip


class LinearModel:
    """``y = x @ w + b`` trained by plain SGD on the mean squared error.

    Weighted loss follows Keras: per-sample loss times weight, summed, divided
    by the batch size. Logs are the values *before* the update. Every call is
    recorded (a copy of its arrays) so tests can see what the engine fed it.
    ``on_step`` (if set) runs inside every train step, in the compute thread.
    """

    def __init__(self, features: int = 2, lr: float = 0.1) -> None:
        self.w = np.zeros((features, 1))
        self.b = np.zeros(1)
        self.lr = lr
        self.stop_training = False
        self.calls: list[tuple[str, np.ndarray, Any, Any]] = []
        self.on_step: Callable[[int], None] | None = None
        self.threads: set[str] = set()

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", "mae"]

    def _loss(self, x: np.ndarray, y: Any, sw: Any) -> tuple[np.ndarray, dict[str, float]]:
        err = x @ self.w + self.b - np.asarray(y, dtype=float).reshape(len(x), 1)
        weight = np.ones(len(x)) if sw is None else np.asarray(sw, dtype=float)
        loss = float(np.sum(err[:, 0] ** 2 * weight) / len(x))
        mae = float(np.mean(np.abs(err)))
        return err * weight[:, None], {"loss": loss, "mae": mae}

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        self.threads.add(threading.current_thread().name)
        index = sum(1 for c in self.calls if c[0] == "train")
        self.calls.append(("train", np.array(x), np.array(y), _copy(sample_weight)))
        if self.on_step is not None:
            self.on_step(index)
        werr, logs = self._loss(np.asarray(x, dtype=float), y, sample_weight)
        n = len(x)
        self.w -= self.lr * 2 * np.asarray(x, dtype=float).T @ werr / n
        self.b -= self.lr * 2 * werr.sum(axis=0) / n
        return logs

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        self.calls.append(("test", np.array(x), np.array(y), _copy(sample_weight)))
        return self._loss(np.asarray(x, dtype=float), y, sample_weight)[1]

    def predict_on_batch(self, x: Any) -> np.ndarray:
        self.calls.append(("predict", np.array(x), None, None))
        return np.asarray(x, dtype=float) @ self.w + self.b

    def get_weights(self) -> list[np.ndarray]:
        return [self.w.copy(), self.b.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w, self.b = (np.array(w, dtype=float) for w in weights)

    def trained(self) -> list[np.ndarray]:
        """The x arrays of every train step, in order."""
        return [c[1] for c in self.calls if c[0] == "train"]


def _copy(a: Any) -> Any:
    return None if a is None else np.array(a)


class Recorder(Callback):
    """Records every hook call as ``(hook, *args, deep copy of logs)``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.params_at_begin: dict[str, Any] | None = None

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def _recording(hook: str) -> Callable[..., None]:
    def record(self: Recorder, *args: Any) -> None:
        if hook == "on_train_begin":
            self.params_at_begin = dict(self.params)
        *head, logs = args
        self.calls.append((hook, *head, copy.deepcopy(logs)))

    record.__name__ = hook
    return record


for _hook in HOOKS:
    setattr(Recorder, _hook, _recording(_hook))


def make_data(n: int = 10, features: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y = x @ np.arange(1.0, features + 1) + 0.5
    return x, y


def batches_of(x: np.ndarray, y: np.ndarray, size: int, sw: Any = None) -> list[tuple[Any, ...]]:
    out = []
    for i in range(0, len(x), size):
        part = (x[i : i + size], y[i : i + size])
        out.append(part if sw is None else (*part, sw[i : i + size]))
    return out


class ReIterable:
    """An async iterable giving a fresh async generator per epoch."""

    def __init__(self, batches: list[tuple[Any, ...]]) -> None:
        self.batches = batches

    def __aiter__(self) -> AsyncIterator[tuple[Any, ...]]:
        return _agen(self.batches)


async def _agen(batches: list[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
    for b in batches:
        yield b


class SyncReIterable:
    def __init__(self, batches: list[tuple[Any, ...]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(list(self.batches))


class Indexable:
    """``__len__`` + ``__getitem__``; counts ``on_epoch_end`` calls."""

    def __init__(self, batches: list[tuple[Any, ...]]) -> None:
        self.batches = batches
        self.epoch_ends = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return self.batches[i]

    def on_epoch_end(self) -> None:
        self.epoch_ends += 1


class AsyncIndexable:
    """``__len__`` + ``async aget``."""

    def __init__(self, batches: list[tuple[Any, ...]]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    async def aget(self, i: int) -> tuple[Any, ...]:
        await anyio.lowlevel.checkpoint()
        return self.batches[i]


def engine_threads() -> list[str]:
    """Threads the engine may have started that are still alive."""
    return [t.name for t in threading.enumerate() if t.name.startswith("aiofit")]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
