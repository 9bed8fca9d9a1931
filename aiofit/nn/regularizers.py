"""Weight penalties with Keras 3's names and defaults.

A regularizer maps a weight ``W`` to a penalty ``l1 * sum|W| + l2 * sum(W^2)``
that the layer adds to the loss, and gives its gradient
``l1 * sign(W) + 2 * l2 * W`` that the layer adds to the weight's gradient.

Example:
    >>> import numpy as np
    >>> L2(0.5)(np.array([1.0, -2.0]))
    2.5
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ._config import Configured, from_identifier, lookup

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "serialize"]


def _check_factor(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"Invalid value for argument {name}: expected a non-negative float. "
            f"Received: {name}={value!r}"
        )
    return float(value)


class Regularizer(Configured):
    """Base class: ``penalty = reg(W)`` and ``reg.gradient(W)``."""

    class_name: ClassVar[str] = ""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _check_factor(l1, "l1")
        self.l2 = _check_factor(l2, "l2")

    def __call__(self, W: np.ndarray) -> float:
        """The penalty for ``W`` as a Python float."""
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.abs(W).sum(dtype=np.float64))
        if self.l2:
            penalty += self.l2 * float(np.vdot(W, W))
        return penalty

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """``d penalty / d W``, same shape and dtype as ``W`` (0 where ``W == 0`` for L1)."""
        grad = np.zeros_like(W)
        self.add_gradient(W, grad)
        return grad

    def add_gradient(self, W: np.ndarray, out: np.ndarray) -> None:
        """Add the gradient into ``out`` in place (what layers use: no new arrays)."""
        if self.l1:
            out += self.l1 * np.sign(W)
        if self.l2:
            out += (2.0 * self.l2) * W

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {"l1": self.l1, "l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum|W| + l2 * sum(W^2)`` (Keras 3 defaults ``l1=0.0``, ``l2=0.0``)."""

    class_name = "L1L2"


class L1(Regularizer):
    """``l1 * sum|W|`` (Keras default ``l1=0.01``)."""

    class_name = "L1"

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(W^2)`` (Keras default ``l2=0.01``)."""

    class_name = "L2"

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


_REGISTRY: dict[str, type[Regularizer]] = {
    "l1": L1, "l2": L2, "l1l2": L1L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2,
}
_NAMES = ("l1", "l1_l2", "l1l2", "l2")


def get(identifier: str | Regularizer | dict[str, Any] | None) -> Regularizer | None:
    """Return the regularizer for ``"l1"``/``"l2"``/``"l1l2"``, a config dict, an
    instance, or ``None`` (no penalty).

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if identifier is None:
        return None
    return from_identifier(identifier, "regularizer", Regularizer,
                           lambda name: lookup("regularizer", _REGISTRY, name, _NAMES),
                           "a name, a config dict, None")


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """The JSON form used in layer configs (``None`` stays ``None``)."""
    if regularizer is None:
        return None
    return {"class_name": regularizer.class_name, "config": regularizer.get_config()}
