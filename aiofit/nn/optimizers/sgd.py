"""Stochastic gradient descent, with optional (Nesterov) momentum, as Keras 3."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Optimizer, check_fraction

__all__ = ["SGD"]


class SGD(Optimizer):
    """Gradient descent with optional momentum, Keras 3's update rule.

    Without momentum ``w -= learning_rate * g``; with it
    ``m = momentum * m - learning_rate * g`` and then ``w += m``, or with
    ``nesterov=True``, ``w += momentum * m - learning_rate * g``.

    Args:
        learning_rate: defaults to 0.01.
        momentum: in ``[0, 1]``.
        nesterov: use Nesterov momentum.
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``,
            ``global_clipnorm``, ``name`` (see :class:`Optimizer`).

    Example:
        >>> import numpy as np
        >>> w = np.array([1.0, 2.0], dtype=np.float32)
        >>> SGD(learning_rate=0.5).apply(w, np.array([1.0, -1.0], dtype=np.float32))
        >>> w
        array([0.5, 2.5], dtype=float32)
    """

    default_name = "SGD"

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_fraction("momentum", momentum, closed=True)
        self.nesterov = bool(nesterov)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum else ()

    def _update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        grads *= lr
        if not self.momentum:
            params -= grads
            return
        m = self._slots["momentum"]
        m *= self.momentum
        m -= grads
        if self.nesterov:
            np.multiply(m, self.momentum, out=self._scratch)
            self._scratch -= grads
            params += self._scratch
        else:
            params += m

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
