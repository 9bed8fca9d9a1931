"""Regression losses: means of an elementwise function of ``y_pred - y_true``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .base import Kind, Loss, dense_targets, mean_per_sample, positive_float

__all__ = ["ElementwiseLoss", "Huber", "MeanAbsoluteError", "MeanSquaredError"]


class ElementwiseLoss(Loss):
    """Losses that are a mean of an elementwise function of ``y_pred - y_true``."""

    kind: ClassVar[Kind] = "regression"

    def _terms(
        self, y_true: Any, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        yt = dense_targets(y_true, y_pred)
        elems, d_elems = self._elementwise(yt, y_pred, need_grad)
        return mean_per_sample(elems, d_elems)

    def _elementwise(
        self, y_true: np.ndarray, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


class MeanSquaredError(ElementwiseLoss):
    """``mean((y_pred - y_true) ** 2)`` over the last axis."""

    default_name = "mean_squared_error"

    def _elementwise(
        self, y_true: np.ndarray, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        err = y_pred - y_true
        return err * err, (2 * err if need_grad else None)


class MeanAbsoluteError(ElementwiseLoss):
    """``mean(abs(y_pred - y_true))`` over the last axis (gradient 0 where equal)."""

    default_name = "mean_absolute_error"

    def _elementwise(
        self, y_true: np.ndarray, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        err = y_pred - y_true
        return np.abs(err), (np.sign(err) if need_grad else None)


class Huber(ElementwiseLoss):
    """Quadratic for ``|error| <= delta``, linear beyond, as ``keras.losses.Huber``.

    Args:
        delta: where the loss turns from quadratic to linear (> 0).
        name: defaults to ``"huber_loss"`` (Keras's name).
    """

    default_name = "huber_loss"

    def __init__(self, delta: float = 1.0, name: str | None = None) -> None:
        super().__init__(name)
        self.delta = positive_float("delta", delta)

    def _elementwise(
        self, y_true: np.ndarray, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        err = y_pred - y_true
        abs_err = np.abs(err)
        small = abs_err <= self.delta
        linear = self.delta * abs_err - 0.5 * self.delta**2
        values = np.where(small, 0.5 * err * err, linear)
        if not need_grad:
            return values, None
        return values, np.where(small, err, self.delta * np.sign(err))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}
