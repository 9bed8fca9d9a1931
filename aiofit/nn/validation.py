"""Checks a batch before anything touches the model.

Every problem raises :class:`aiofit.DataError` whose message starts with where the
batch came from (``"batch 3"``, ``"train_on_batch"``) and ends with what was
received, so the model and its optimizer state are never half-updated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._exceptions import DataError

__all__ = ["check_arrays", "split_batch"]


def split_batch(batch: Any, where: str) -> tuple[Any, Any, Any]:
    """Unpack ``(x, y)`` or ``(x, y, sample_weight)``; anything else is a DataError."""
    if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
        kind = f"a {type(batch).__name__} of length {len(batch)}" if isinstance(
            batch, tuple | list) else f"a {type(batch).__name__}"
        raise DataError(
            f"{where}: expected a tuple (x, y) or (x, y, sample_weight); received {kind}"
        )
    x, y, *rest = batch
    return x, y, (rest[0] if rest else None)


def _as_numeric(a: Any, role: str, where: str) -> np.ndarray:
    arr = np.asarray(a) if not isinstance(a, np.ndarray) else a
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise DataError(f"{where}: {role} must be numeric; received dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{where}: {role} must be real; received dtype {arr.dtype}")
    if arr.ndim == 0:
        raise DataError(f"{where}: {role} must have a batch dimension; received a scalar")
    return arr


def _check_finite(arr: np.ndarray, role: str, where: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        value = arr[tuple(bad)]
        raise DataError(
            f"{where}: {role} contains non-finite values; first at index "
            f"{tuple(int(i) for i in bad)}: {value}"
        )


def check_arrays(
    x: Any, y: Any = None, sample_weight: Any = None, *, where: str = "batch"
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Return ``(x, y, sample_weight)`` as numeric arrays, or raise DataError.

    Checks what holds for any model: numeric dtypes, a non-empty batch, equal
    lengths, finite inputs and weights, non-negative weights of shape ``(n,)``.
    Targets may hold anything numeric (a loss decides); model-specific checks
    (feature shape, label range) belong to the model.
    """
    xa = _as_numeric(x, "x", where)
    n = xa.shape[0]
    if n == 0:
        raise DataError(f"{where}: the batch is empty (x has shape {xa.shape})")
    _check_finite(xa, "x", where)
    ya = None if y is None else _as_numeric(y, "y", where)
    if ya is not None and ya.shape[0] != n:
        raise DataError(
            f"{where}: x and y have different lengths; received x with {n} samples "
            f"and y with {ya.shape[0]}"
        )
    sw = None if sample_weight is None else _as_numeric(sample_weight, "sample_weight", where)
    if sw is not None:
        if sw.ndim == 2 and sw.shape[1] == 1:
            sw = sw[:, 0]
        if sw.shape != (n,):
            raise DataError(
                f"{where}: sample_weight must have shape ({n},) to match x; "
                f"received shape {sw.shape}"
            )
        _check_finite(sw, "sample_weight", where)
        if (sw < 0).any():
            raise DataError(
                f"{where}: sample_weight must be non-negative; received {sw[sw < 0][0]}"
            )
    return xa, ya, sw
