"""RMSprop, as Keras 3 computes it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Optimizer, check_fraction, check_non_negative

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop with optional plain momentum and centering, Keras 3's update rule::

        v = rho * v + (1 - rho) * g**2
        a = rho * a + (1 - rho) * g           # centered only
        step = lr * g / sqrt(v - a**2 + eps)  # or sqrt(v + eps) when not centered
        mo = momentum * mo + step; w -= mo    # or w -= step without momentum

    Args:
        learning_rate: defaults to 0.001.
        rho: decay of the squared-gradient average, in ``[0, 1)``.
        momentum: in ``[0, 1]``.
        epsilon: added under the square root.
        centered: divide by the estimated variance instead of the second moment.
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``,
            ``global_clipnorm``, ``name`` (see :class:`Optimizer`).
    """

    default_name = "rmsprop"

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = check_fraction("rho", rho)
        self.momentum = check_fraction("momentum", momentum, closed=True)
        self.epsilon = check_non_negative("epsilon", epsilon)
        self.centered = bool(centered)

    @property
    def slot_names(self) -> tuple[str, ...]:
        names = ["velocity"]
        if self.momentum:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return tuple(names)

    def _update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        rho, v, denom = self.rho, self._slots["velocity"], self._scratch
        v *= rho
        np.multiply(grads, grads, out=denom)
        denom *= 1 - rho
        v += denom
        if self.centered:
            avg = self._slots["average_gradient"]
            avg *= rho
            np.multiply(grads, 1 - rho, out=denom)
            avg += denom
            np.multiply(avg, avg, out=denom)
            np.subtract(v, denom, out=denom)
            denom += self.epsilon
        else:
            np.add(v, self.epsilon, out=denom)
        np.sqrt(denom, out=denom)
        grads *= lr
        grads /= denom
        if self.momentum:
            mo = self._slots["momentum"]
            mo *= self.momentum
            mo += grads
            params -= mo
        else:
            params -= grads

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }
