"""Stateless per-batch metrics, computed as Keras 3 computes them.

A metric is a callable ``metric(y_true, y_pred, sample_weight=None) -> float``
returning the sample-weighted mean of its per-sample values over the batch,
``sum(w * v) / sum(w)`` (0.0 when the weights sum to 0, like Keras's
``divide_no_nan``). Averaging batches into epoch values is the engine's job.

``get("accuracy")`` (or ``"acc"``) picks binary, sparse categorical or
categorical accuracy on every call from the shapes, exactly as Keras 3's
``compile_utils`` does, and the metric's ``name`` (the logs key) is the string
the user passed::

    acc = metrics.get("acc")
    acc.name                                  # "acc"
    acc([0, 2], [[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])   # 1.0 (sparse categorical)

Accuracy metrics read ``y_pred`` as it is: when the loss uses
``from_logits=True`` the argmax is unaffected, and binary accuracy still
thresholds the raw logits at 0.5, which is what Keras does too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._exceptions import DataError
from .losses.base import match_shape

__all__ = [
    "AutoAccuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "get",
]

PerSample = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Metric:
    """A per-sample function reduced to a weighted mean over the batch.

    Args:
        fn: ``fn(y_true, y_pred) -> array`` with one value per sample (extra
            axes are averaged per sample).
        name: the logs key; defaults to ``fn.__name__``.
    """

    def __init__(self, fn: PerSample, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(self).__name__)

    def per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        """The metric of each sample, shape ``(N,)``."""
        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        values = np.asarray(self.fn(yt, yp), dtype=np.float64)
        n = len(yp)
        if values.ndim == 0 or len(values) != n:
            raise ValueError(
                f"metric {self.name!r} must return one value per sample ({n}); "
                f"received shape {values.shape}"
            )
        return values.reshape(n, -1).mean(axis=1)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        """The (weighted) mean of :meth:`per_sample` over the batch."""
        values = self.per_sample(y_true, y_pred)
        if sample_weight is None:
            return float(values.mean()) if len(values) else 0.0
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape == (len(values), 1):
            w = w.reshape(-1)
        if w.shape != values.shape:
            raise DataError(
                f"sample_weight must have shape {values.shape} to match the batch; "
                f"received shape {w.shape}"
            )
        total = float(w.sum())
        return float(np.dot(w, values)) / total if total else 0.0

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


# -------------------------------------------------------- per-sample functions


def binary_accuracy(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 where ``(y_pred > threshold) == y_true``, averaged over the last axis."""
    y_true = match_shape(y_true, y_pred)
    return (y_true == (y_pred > threshold)).astype(np.float64)


def categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """1 where ``argmax(y_true) == argmax(y_pred)`` (first maximum wins ties)."""
    y_true = match_shape(y_true, y_pred)
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """1 where the integer label equals ``argmax(y_pred)``."""
    labels = _labels(y_true, y_pred)
    return (labels == np.argmax(y_pred, axis=-1)).astype(np.float64)


def top_k_categorical_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, k: int = 5
) -> np.ndarray:
    """1 where the one-hot target's class is among the ``k`` largest predictions."""
    y_true = match_shape(y_true, y_pred)
    return _in_top_k(np.argmax(y_true, axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, k: int = 5
) -> np.ndarray:
    """1 where the integer label is among the ``k`` largest predictions."""
    return _in_top_k(_labels(y_true, y_pred), y_pred, k)


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``abs(y_pred - y_true)``, averaged per sample."""
    return np.abs(y_pred - match_shape(y_true, y_pred)).astype(np.float64)


def mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``(y_pred - y_true) ** 2``, averaged per sample."""
    err = (y_pred - match_shape(y_true, y_pred)).astype(np.float64)
    return err * err


def _labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    want = y_pred.shape[:-1]
    if y_true.shape != want:
        if y_true.shape[:-1] != want or y_true.shape[-1:] != (1,):
            raise DataError(
                f"sparse labels must have shape {want} or {want + (1,)} to match y_pred "
                f"of shape {y_pred.shape}; received shape {y_true.shape}"
            )
        y_true = y_true.reshape(want)
    # Keras casts labels to the argmax's integer dtype (truncating floats)
    return y_true.astype(np.int64)


def _in_top_k(labels: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    # Keras's in_top_k: the target's score is >= the k-th largest score (ties count)
    target = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    n_greater = (y_pred > target).sum(axis=-1)
    return (n_greater < k).astype(np.float64)


# ------------------------------------------------------------------ classes


class BinaryAccuracy(Metric):
    """How often ``y_pred > threshold`` matches binary ``y_true``."""

    def __init__(self, name: str | None = None, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)
        super().__init__(self._fn, name or "binary_accuracy")

    def _fn(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return binary_accuracy(y_true, y_pred, self.threshold)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    """How often the argmax of ``y_pred`` matches that of one-hot ``y_true``."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(categorical_accuracy, name or "categorical_accuracy")


class SparseCategoricalAccuracy(Metric):
    """How often the argmax of ``y_pred`` matches the integer label."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(sparse_categorical_accuracy, name or "sparse_categorical_accuracy")


class TopKCategoricalAccuracy(Metric):
    """How often the one-hot target is in the top ``k`` predictions."""

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        self.k = _positive_int("k", k)
        super().__init__(self._fn, name or "top_k_categorical_accuracy")

    def _fn(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return top_k_categorical_accuracy(y_true, y_pred, self.k)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """How often the integer label is in the top ``k`` predictions."""

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        super().__init__(k, name or "sparse_top_k_categorical_accuracy")

    def _fn(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return sparse_top_k_categorical_accuracy(y_true, y_pred, self.k)


class MeanAbsoluteError(Metric):
    """Mean absolute error per sample, then weighted mean over the batch."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(mean_absolute_error, name or "mean_absolute_error")


class MeanSquaredError(Metric):
    """Mean squared error per sample, then weighted mean over the batch."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(mean_squared_error, name or "mean_squared_error")


class AutoAccuracy(Metric):
    """``"accuracy"``: chooses its kind from the shapes on every call (Keras's rule).

    ``y_pred`` last dim 1 -> binary accuracy (threshold 0.5); ``y_true`` of
    lower rank than ``y_pred``, or ``y_true`` last dim 1 with ``y_pred`` last
    dim > 1 -> sparse categorical accuracy; otherwise categorical accuracy.
    """

    def __init__(self, name: str = "accuracy") -> None:
        super().__init__(self._fn, name)

    @staticmethod
    def _fn(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return resolve_accuracy(y_true, y_pred)(y_true, y_pred)


def resolve_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> PerSample:
    """The accuracy function Keras 3 would pick for these shapes."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    t_last = y_true.shape[-1] if y_true.ndim else 1
    p_last = y_pred.shape[-1] if y_pred.ndim else 1
    if p_last == 1:
        return binary_accuracy
    if y_true.ndim < y_pred.ndim or (t_last == 1 and p_last > 1):
        return sparse_categorical_accuracy
    return categorical_accuracy


def _positive_int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{what}` must be a positive integer. Received: {what}={value!r}")
    return int(value)


# ------------------------------------------------------------------ lookup

_BY_NAME: dict[str, Callable[[str], Metric]] = {
    "accuracy": AutoAccuracy,
    "acc": AutoAccuracy,
    "binary_accuracy": lambda name: BinaryAccuracy(name=name),
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": lambda name: TopKCategoricalAccuracy(name=name),
    "sparse_top_k_categorical_accuracy": lambda name: SparseTopKCategoricalAccuracy(name=name),
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}


def get(identifier: str | Metric | PerSample) -> Metric:
    """A metric from a name, a ``Metric`` or a per-sample function.

    The string passed becomes the metric's ``name`` (``get("acc").name ==
    "acc"``, ``get("mse").name == "mse"``); a function ``fn(y_true, y_pred)``
    returning per-sample values is wrapped with ``name = fn.__name__``.

    Raises:
        ValueError: for an unknown name or an unsupported object.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        factory = _BY_NAME.get(identifier.lower())
        if factory is not None:
            return factory(identifier)
    elif callable(identifier):
        return Metric(identifier)
    raise ValueError(
        f"Unknown metric: expected one of {sorted(_BY_NAME)}, a Metric instance or a "
        f"function fn(y_true, y_pred). Received: {identifier!r}"
    )
