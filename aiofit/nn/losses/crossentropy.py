"""Cross-entropies, stable for logits and clipped (as Keras) for probabilities."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..._exceptions import DataError
from .base import EPSILON, Kind, Loss, dense_targets, mean_per_sample
from .regression import ElementwiseLoss

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "sparse_labels",
]


class BinaryCrossentropy(ElementwiseLoss):
    """Binary cross-entropy, averaged over the last axis, as Keras.

    Args:
        from_logits: ``y_pred`` holds logits (stable log-sigmoid form) rather
            than probabilities (clipped to ``[1e-7, 1 - 1e-7]``).
        label_smoothing: in ``[0, 1]``; targets become
            ``y * (1 - label_smoothing) + 0.5 * label_smoothing``.
        name: defaults to ``"binary_crossentropy"``.
    """

    kind: ClassVar[Kind] = "binary"
    default_name = "binary_crossentropy"

    def __init__(
        self, from_logits: bool = False, label_smoothing: float = 0.0, name: str | None = None
    ) -> None:
        super().__init__(name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)

    def _elementwise(
        self, y_true: np.ndarray, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            return _bce_logits(y_true, y_pred, need_grad)
        return _bce_probs(y_true, y_pred, need_grad)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


def _bce_logits(
    t: np.ndarray, x: np.ndarray, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    # -t*log(sigmoid(x)) - (1-t)*log(sigmoid(-x)) == max(x, 0) - t*x + log1p(exp(-|x|))
    values = np.maximum(x, 0) - t * x + np.log1p(np.exp(-np.abs(x)))
    return values, (_sigmoid(x) - t if need_grad else None)


def _bce_probs(
    t: np.ndarray, p: np.ndarray, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    c = np.clip(p, EPSILON, 1.0 - EPSILON)
    values = -(t * np.log(c) + (1 - t) * np.log(1 - c))
    if not need_grad:
        return values, None
    grad = (1 - t) / (1 - c) - t / c
    grad[c != p] = 0  # clipped elements do not move the loss
    return values, grad


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or soft) targets over the last axis.

    With ``from_logits=False``, ``y_pred`` is first divided by its sum over the
    last axis and then clipped, as Keras does; the gradient accounts for both.

    Args:
        from_logits: ``y_pred`` holds logits (log-sum-exp form).
        label_smoothing: in ``[0, 1]``; targets become
            ``y * (1 - label_smoothing) + label_smoothing / num_classes``.
        name: defaults to ``"categorical_crossentropy"``.
    """

    kind: ClassVar[Kind] = "categorical"
    default_name = "categorical_crossentropy"

    def __init__(
        self, from_logits: bool = False, label_smoothing: float = 0.0, name: str | None = None
    ) -> None:
        super().__init__(name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)

    def _terms(
        self, y_true: Any, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        _check_class_axis(y_pred)
        return _crossentropy(self._targets(y_true, y_pred), y_pred, self.from_logits, need_grad)

    def _targets(self, y_true: Any, y_pred: np.ndarray) -> np.ndarray:
        t = dense_targets(y_true, y_pred)
        if self.label_smoothing:
            n_classes = y_pred.shape[-1]
            t = t * (1.0 - self.label_smoothing) + self.label_smoothing / n_classes
        return t

    def _softmax_terms(
        self, y_true: Any, probs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if self.from_logits or probs.ndim != 2 or not _same_terms(self, CategoricalCrossentropy):
            return None
        t = self._targets(y_true, probs)
        q, c = _clipped(probs, probs.sum(axis=-1, keepdims=True))
        rows = -(t * np.log(c)).sum(axis=-1)
        # Through the clip and the softmax, the gradient is q * sum(t') - t', where t'
        # is t with the clipped entries zeroed (Keras's clip passes them no gradient).
        kept = np.where(c == q, t, 0)
        return rows, q * kept.sum(axis=-1, keepdims=True) - kept

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class indices.

    Labels may have shape ``(N,)`` or ``(N, 1)`` (more generally ``y_pred``'s
    shape without, or with a size-1, last axis) and be integers or
    integer-valued floats; a label outside ``[0, num_classes)`` or with a
    fractional part raises :class:`aiofit.DataError`.

    Args:
        from_logits: ``y_pred`` holds logits (log-sum-exp form).
        name: defaults to ``"sparse_categorical_crossentropy"``.
    """

    kind: ClassVar[Kind] = "sparse"
    default_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.from_logits = bool(from_logits)

    def _terms(
        self, y_true: Any, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        _check_class_axis(y_pred)
        labels = sparse_labels(y_true, y_pred)[..., None]
        if self.from_logits:
            rows, d_rows = _sparse_ce_logits(labels, y_pred, need_grad)
        else:
            rows, d_rows = _sparse_ce_probs(labels, y_pred, need_grad)
        return mean_per_sample(rows, d_rows)

    def _softmax_terms(
        self, y_true: Any, probs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if self.from_logits or probs.ndim != 2 or \
                not _same_terms(self, SparseCategoricalCrossentropy):
            return None
        labels = sparse_labels(y_true, probs)
        at = np.arange(len(probs))
        q, c = _clipped(probs[at, labels], probs.sum(axis=-1))
        grad = probs.copy()  # d loss / d logits of a softmax: probs - onehot(label)
        grad[at, labels] -= 1
        clipped = c != q
        if clipped.any():
            grad[clipped] = 0  # Keras's clip passes no gradient: such a sample does not move
        return -np.log(c), grad

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


def _crossentropy(
    t: np.ndarray, y_pred: np.ndarray, from_logits: bool, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    if from_logits:
        rows, d_rows = _ce_logits(t, y_pred, need_grad)
    else:
        rows, d_rows = _ce_probs(t, y_pred, need_grad)
    # rows has y_pred's shape without the class axis: average what is left per sample
    return mean_per_sample(rows, d_rows)


def _ce_logits(
    t: np.ndarray, x: np.ndarray, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    shifted = x - x.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(total)
    rows = -(t * log_softmax).sum(axis=-1)
    if not need_grad:
        return rows, None
    return rows, (exp / total) * t.sum(axis=-1, keepdims=True) - t


def _ce_probs(
    t: np.ndarray, p: np.ndarray, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    s = p.sum(axis=-1, keepdims=True)
    q, c = _clipped(p, s)
    rows = -(t * np.log(c)).sum(axis=-1)
    if not need_grad:
        return rows, None
    g = np.where(c == q, -t / c, 0)  # dL/dq; clipped entries pass no gradient
    # q = p / sum(p): dL/dp_k = (g_k - sum_j g_j q_j) / s
    return rows, (g - (g * q).sum(axis=-1, keepdims=True)) / s


# The sparse forms gather the label's column instead of multiplying by one-hot
# targets; they compute what _ce_logits and _ce_probs compute for a one-hot t,
# operation for operation, so the results are the same to the bit.


def _sparse_ce_logits(
    labels: np.ndarray, x: np.ndarray, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    shifted = x - x.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    rows = (np.log(total) - np.take_along_axis(shifted, labels, axis=-1))[..., 0]
    if not need_grad:
        return rows, None
    exp /= total
    picked = np.take_along_axis(exp, labels, axis=-1)
    np.put_along_axis(exp, labels, picked - 1, axis=-1)
    return rows, exp


def _sparse_ce_probs(
    labels: np.ndarray, p: np.ndarray, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    s = p.sum(axis=-1, keepdims=True)
    q, c = _clipped(np.take_along_axis(p, labels, axis=-1), s)
    rows = -np.log(c)[..., 0]
    if not need_grad:
        return rows, None
    g = np.where(c == q, -1 / c, 0)  # dL/dq at the label; clipped, it passes no gradient
    gq = g * q
    grad = np.empty_like(p)
    np.divide(-gq, s, out=grad)  # (0 - g q) / s off the label
    np.put_along_axis(grad, labels, (g - gq) / s, axis=-1)
    return rows, grad


def _clipped(p: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``q = p / total`` and ``c``: ``q`` clipped to ``[EPSILON, 1 - EPSILON]``, as Keras
    clips probabilities. The loss reads ``log(c)``; where ``c != q`` no gradient passes.
    Every probability form (general and softmax shortcut) goes through here, so they
    compute the same loss to the bit."""
    q = p / total
    return q, np.clip(q, EPSILON, 1.0 - EPSILON)


def _same_terms(loss: Loss, cls: type[Loss]) -> bool:
    """False for a subclass that redefines the loss: the shortcut would not match it."""
    return type(loss)._terms is cls._terms


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sparse_labels(y_true: Any, y_pred: np.ndarray) -> np.ndarray:
    """Integer class indices of shape ``y_pred.shape[:-1]``, checked against its last axis."""
    yt = np.asarray(y_true)
    want = y_pred.shape[:-1]
    if yt.shape != want:
        if yt.shape[:-1] == want and yt.shape[-1:] == (1,):
            yt = yt.reshape(want)
        else:
            raise DataError(
                f"sparse labels must have shape {want} or {want + (1,)} to match y_pred "
                f"of shape {y_pred.shape}; received shape {yt.shape}"
            )
    if yt.dtype.kind not in "iu":
        if yt.dtype.kind != "f":
            raise DataError(
                f"sparse labels must be integer class indices; received dtype {yt.dtype}"
            )
        fractional = yt != np.floor(yt)  # also true for NaN
        if fractional.any():
            raise DataError(
                f"sparse labels must be integer class indices; received {yt[fractional][0]}"
            )
        if not np.isfinite(yt).all():
            raise DataError(f"sparse labels must be finite; received {yt[~np.isfinite(yt)][0]}")
        yt = yt.astype(np.int64)
    n_classes = y_pred.shape[-1]
    if yt.size and (yt.min() < 0 or yt.max() >= n_classes):
        bad_label = yt.min() if yt.min() < 0 else yt.max()
        raise DataError(
            f"sparse labels must be in [0, {n_classes}) for {n_classes} classes; "
            f"received {bad_label}"
        )
    return yt


def _check_class_axis(y_pred: np.ndarray) -> None:
    if y_pred.ndim < 2:
        raise DataError(
            f"categorical losses need y_pred with a class axis (N, num_classes); "
            f"received shape {y_pred.shape}"
        )


def _smoothing(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"`label_smoothing` must be a float; received label_smoothing={value!r}")
    if not 0 <= value <= 1:
        raise ValueError(
            f"`label_smoothing` must be in [0, 1]. Received: label_smoothing={value}"
        )
    return float(value)
