"""Adagrad, as Keras 3 computes it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Optimizer, check_non_negative

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, Keras 3's update rule: ``acc += g**2; w -= lr * g / sqrt(acc + eps)``.

    Args:
        learning_rate: defaults to 0.001.
        initial_accumulator_value: starting value of ``acc`` (>= 0).
        epsilon: added under the square root.
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``,
            ``global_clipnorm``, ``name`` (see :class:`Optimizer`).
    """

    default_name = "adagrad"

    def __init__(
        self,
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_non_negative(
            "initial_accumulator_value", initial_accumulator_value
        )
        self.epsilon = check_non_negative("epsilon", epsilon)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def _slot_initial_value(self, name: str) -> float:
        return self.initial_accumulator_value

    def _update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        acc, tmp = self._slots["accumulator"], self._scratch
        np.multiply(grads, grads, out=tmp)
        acc += tmp
        np.add(acc, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        grads *= lr
        grads /= tmp
        params -= grads

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }
