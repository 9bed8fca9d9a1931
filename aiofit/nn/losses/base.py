"""The loss base class and the reduction every loss shares (Keras 3's defaults)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from ..._exceptions import DataError

__all__ = [
    "EPSILON",
    "Kind",
    "Loss",
    "as_float",
    "dense_targets",
    "match_shape",
    "mean_per_sample",
    "positive_float",
]

#: Keras's ``backend.epsilon()``: the clipping bound for probabilities.
EPSILON = 1e-7

Kind = Literal["regression", "binary", "categorical", "sparse"]


class Loss:
    """Base class: subclasses implement ``_terms``.

    Attributes:
        name: the loss's name (Keras's default names).
        kind: which targets it expects: ``"regression"``, ``"binary"``
            (0/1 targets), ``"categorical"`` (one-hot) or ``"sparse"`` (class
            indices). Models use it for label-range checks and class weights.
    """

    kind: ClassVar[Kind]
    default_name: ClassVar[str]

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.default_name

    def per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        """The loss of each sample, shape ``(N,)``, before weighting."""
        yp = as_float(y_pred)
        values, _ = self._terms(y_true, yp, need_grad=False)
        return values

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        """``sum(per_sample * sample_weight) / N`` as a Python float."""
        yp = as_float(y_pred)
        values, _ = self._terms(y_true, yp, need_grad=False)
        return _reduce(values, _weights(sample_weight, len(values), yp.dtype))

    def value_and_grad(
        self, y_true: Any, y_pred: Any, sample_weight: Any = None
    ) -> tuple[float, np.ndarray]:
        """The reduced loss and its gradient with respect to ``y_pred``.

        The gradient has ``y_pred``'s shape and (floating) dtype.
        """
        yp = as_float(y_pred)
        values, grad = self._terms(y_true, yp, need_grad=True)
        assert grad is not None
        return _reduce_with_grad(values, grad, sample_weight, yp.dtype)

    def value_and_logits_grad(
        self, y_true: Any, probs: np.ndarray, sample_weight: Any = None
    ) -> tuple[float, np.ndarray] | None:
        """For ``probs`` computed as ``softmax(z)`` over the last axis of a 2-D ``z``:
        the reduced loss and its gradient with respect to ``z``, or None.

        The same loss and (up to rounding) the same gradient as :meth:`value_and_grad`
        followed by the softmax's backward pass, in a few passes instead of a dozen.
        None means this loss has no such shortcut: use :meth:`value_and_grad`.
        """
        terms = self._softmax_terms(y_true, probs)
        if terms is None:
            return None
        return _reduce_with_grad(*terms, sample_weight, probs.dtype)

    def _softmax_terms(
        self, y_true: Any, probs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-sample losses and ``d per_sample[n] / d z`` for ``probs = softmax(z)``."""
        return None

    def _terms(
        self, y_true: Any, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-sample losses ``(N,)`` and, if asked, ``d per_sample[n] / d y_pred``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """JSON-able constructor arguments."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def as_float(y_pred: Any) -> np.ndarray:
    yp = np.asarray(y_pred)
    if yp.dtype.kind != "f":
        yp = yp.astype(np.float32)
    if yp.ndim == 0:
        raise DataError(f"y_pred must have a batch dimension; received a scalar: {yp}")
    return yp


def match_shape(y_true: Any, y_pred: np.ndarray) -> np.ndarray:
    """``y_true`` in ``y_pred``'s shape, its dtype kept ((N,) and (N, 1) are interchangeable).

    Keras squeezes or expands a trailing size-1 axis so the ranks agree.
    """
    yt = np.asarray(y_true)
    if yt.shape != y_pred.shape:
        if yt.size != y_pred.size or len(yt) != len(y_pred):
            raise DataError(
                f"y_true and y_pred have incompatible shapes; received y_true with shape "
                f"{yt.shape} and y_pred with shape {y_pred.shape}"
            )
        yt = yt.reshape(y_pred.shape)
    return yt


def dense_targets(y_true: Any, y_pred: np.ndarray) -> np.ndarray:
    """``y_true`` as ``y_pred``'s dtype and shape (see :func:`match_shape`)."""
    return match_shape(y_true, y_pred).astype(y_pred.dtype, copy=False)


def mean_per_sample(
    elems: np.ndarray, d_elems: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    n = len(elems)
    per_sample_size = elems.size // n if n else 1
    # one element per sample is its own mean: skip mean()'s overhead (a small batch's cost)
    values = elems if elems.ndim == 1 else elems.reshape(n, -1).mean(axis=1)
    if d_elems is not None and per_sample_size != 1:
        d_elems /= per_sample_size
    return values, d_elems


def _weights(sample_weight: Any, n: int, dtype: np.dtype) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=dtype)
    if w.shape == (n, 1):
        w = w.reshape(n)
    if w.shape != (n,):
        raise DataError(
            f"sample_weight must have shape ({n},) to match the batch; received shape {w.shape}"
        )
    return w


def _reduce_with_grad(
    values: np.ndarray, grad: np.ndarray, sample_weight: Any, dtype: np.dtype
) -> tuple[float, np.ndarray]:
    """The reduced loss, and ``grad`` (per-sample gradients) scaled in place to match."""
    n = len(values)
    w = _weights(sample_weight, n, dtype)
    if w is None:
        grad *= 1.0 / n  # a Python float multiplies in grad's dtype (NEP 50)
    else:
        grad *= (w / dtype.type(n)).reshape((n,) + (1,) * (grad.ndim - 1))
    return _reduce(values, w), grad


def _reduce(values: np.ndarray, w: np.ndarray | None) -> float:
    n = len(values)
    if n == 0:
        return 0.0
    total = values.sum(dtype=np.float64) if w is None else np.dot(
        values.astype(np.float64), w.astype(np.float64)
    )
    return float(total) / n


def positive_float(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"`{what}` must be a float; received {what}={value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{what}` must be a positive finite float. Received: {what}={value}")
    return float(value)
