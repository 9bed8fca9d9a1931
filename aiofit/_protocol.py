"""The protocol the engine drives: any model with these members can be fitted."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Trainable"]


@runtime_checkable
class Trainable(Protocol):
    """What :func:`aiofit.fit` needs from a model, and nothing more.

    ``aiofit.Sequential`` satisfies it; so can a hand-written model (see
    ``examples/custom_trainable.py``). The engine calls ``train_on_batch`` and
    ``test_on_batch`` from one worker thread at a time, never concurrently.
    """

    stop_training: bool

    @property
    def metrics_names(self) -> list[str]: ...

    def train_on_batch(
        self, x: Any, y: Any, sample_weight: Any = None
    ) -> dict[str, float]: ...

    def test_on_batch(
        self, x: Any, y: Any, sample_weight: Any = None
    ) -> dict[str, float]: ...

    def predict_on_batch(self, x: Any) -> np.ndarray: ...

    def get_weights(self) -> list[np.ndarray]: ...

    def set_weights(self, weights: list[np.ndarray]) -> None: ...
