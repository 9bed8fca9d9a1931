"""Adam and AdamW, as Keras 3 computes them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Optimizer, check_fraction, check_non_negative

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam, Keras 3's update rule (``epsilon`` is "epsilon hat", outside the sqrt).

    At step ``t`` (1-based)::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1)
        v += (g**2 - v) * (1 - beta_2)
        v_hat = max(v_hat, v)                 # amsgrad only, then used as v
        w -= alpha * m / (sqrt(v) + epsilon)

    Args:
        learning_rate: defaults to 0.001.
        beta_1: decay of the first moment, in ``[0, 1)``.
        beta_2: decay of the second moment, in ``[0, 1)``.
        epsilon: added to ``sqrt(v)``.
        amsgrad: keep the running maximum of ``v`` (AMSGrad).
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``,
            ``global_clipnorm``, ``name`` (see :class:`Optimizer`).
    """

    default_name = "adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_fraction("beta_1", beta_1)
        self.beta_2 = check_fraction("beta_2", beta_2)
        self.epsilon = check_non_negative("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity", "velocity_hat") if self.amsgrad else (
            "momentum", "velocity")

    def _update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        t = self._iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m, v, tmp = self._slots["momentum"], self._slots["velocity"], self._scratch
        np.subtract(grads, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        np.square(grads, out=tmp)
        tmp -= v
        tmp *= 1 - self.beta_2
        v += tmp
        if self.amsgrad:
            v = np.maximum(self._slots["velocity_hat"], v, out=self._slots["velocity_hat"])
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.multiply(m, alpha, out=grads)
        grads /= tmp
        params -= grads

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (``w -= w * weight_decay * lr`` each step).

    Args:
        learning_rate: defaults to 0.001.
        weight_decay: defaults to 0.004 (Keras's default); must not be None.
        beta_1, beta_2, epsilon, amsgrad: as :class:`Adam`.
        **kwargs: ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``.
    """

    default_name = "adamw"

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        if weight_decay is None:
            raise ValueError(
                "Argument `weight_decay` must be a float. Received: weight_decay=None"
            )
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs
        )
