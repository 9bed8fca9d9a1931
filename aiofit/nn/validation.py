"""Checks a batch before anything touches the model.

Every problem raises :class:`aiofit.DataError` whose message starts with where the
batch came from (``"batch 3"``, ``"train_on_batch"``) and ends with what was
received, so the model and its optimizer state are never half-updated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._exceptions import DataError

__all__ = [
    "check_arrays",
    "check_features",
    "check_targets",
    "class_weight_to_sample_weight",
    "split_batch",
]


def split_batch(batch: Any, where: str) -> tuple[Any, Any, Any]:
    """Unpack ``(x, y)`` or ``(x, y, sample_weight)``; anything else is a DataError."""
    if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
        raise DataError(
            f"{where}: expected a tuple (x, y) or (x, y, sample_weight); "
            f"received {_describe(batch)}"
        )
    x, y, *rest = batch
    return x, y, (rest[0] if rest else None)


def _describe(obj: Any) -> str:
    """A short account of a value that is not what we expected."""
    kind = type(obj).__name__
    if isinstance(obj, dict):
        keys = [str(k) for k in list(obj)[:8]]
        return f"a {kind} with keys {keys} (dicts of named inputs are not supported)"
    if isinstance(obj, str | bytes):
        text = repr(obj if len(obj) <= 40 else obj[:40])
        return f"a {kind} {text}{'...' if len(obj) > 40 else ''}"
    if isinstance(obj, tuple | list):
        return f"a {kind} of length {len(obj)}"
    return f"a {kind}"


def _as_numeric(a: Any, role: str, where: str) -> np.ndarray:
    if isinstance(a, dict | str | bytes):
        raise DataError(f"{where}: {role} must be a numeric array; received {_describe(a)}")
    try:
        arr = a if isinstance(a, np.ndarray) else np.asarray(a)
    except (ValueError, TypeError) as exc:
        # numpy refuses ragged nested lists ("inhomogeneous shape") and odd objects
        raise DataError(
            f"{where}: {role} cannot be made into one numeric array (are its rows of "
            f"different lengths?); received {_describe(a)}: {exc}"
        ) from exc
    # dtype.kind, not np.issubdtype: the same test at a fraction of the cost, paid
    # on every batch (b: bool, i/u: integers, f: floats, c: complex)
    if arr.dtype.kind not in "biufc":
        raise DataError(f"{where}: {role} must be numeric; received dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise DataError(f"{where}: {role} must be real; received dtype {arr.dtype}")
    if arr.ndim == 0:
        raise DataError(f"{where}: {role} must have a batch dimension; received a scalar")
    return arr


def _check_finite(arr: np.ndarray, role: str, where: str, use_blas: bool = False) -> None:
    if arr.dtype.kind == "f" and not _all_finite(arr, use_blas):
        bad = np.argwhere(~np.isfinite(arr))[0]
        value = arr[tuple(bad)]
        raise DataError(
            f"{where}: {role} contains non-finite values; first at index "
            f"{tuple(int(i) for i in bad)}: {value}"
        )


def _all_finite(arr: np.ndarray, use_blas: bool = False) -> bool:
    if arr.size == 0:
        return True
    if use_blas and arr.dtype in _BLAS_FLOATS and arr.flags.c_contiguous:
        # A NaN or an inf makes the sum of squares non-finite: one BLAS pass (on
        # all cores) instead of two reductions. A non-finite sum may also be only
        # overflowing squares, so that case falls through to the exact test.
        flat = arr.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: no warning
            if math.isfinite(np.dot(flat, flat)):
                return True
    # max and min propagate NaN, and an inf is the max or the min: two quick
    # reductions with no temporary array (isfinite's boolean copy costs more on a
    # cold batch), and no BLAS call, which from the event loop's thread would
    # queue behind a step's matmuls in OpenBLAS's shared thread pool.
    return math.isfinite(arr.max()) and math.isfinite(arr.min())


_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_arrays(
    x: Any, y: Any = None, sample_weight: Any = None, *, where: str = "batch",
    use_blas: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Return ``(x, y, sample_weight)`` as numeric arrays, or raise DataError.

    Checks what holds for any model: numeric dtypes, a non-empty batch, equal
    lengths, finite inputs and weights, non-negative weights of shape ``(n,)``.
    Targets may hold anything numeric (a loss decides); model-specific checks
    (feature shape, label range) belong to the model. ``use_blas`` lets the
    finiteness test of ``x`` run as a BLAS dot product (faster on a large batch);
    leave it off on an event loop's thread, where a BLAS call may wait for a
    training step's matmuls to finish.
    """
    xa = _as_numeric(x, "x", where)
    n = xa.shape[0]
    if n == 0:
        raise DataError(f"{where}: the batch is empty (x has shape {xa.shape})")
    _check_finite(xa, "x", where, use_blas)
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


def class_weight_to_sample_weight(
    y: np.ndarray,
    class_weight: dict[int, float],
    sample_weight: np.ndarray | None = None,
    *,
    where: str = "batch",
) -> np.ndarray:
    """Each sample's weight times the weight of its target class (Keras's rule).

    The class is the label itself for sparse targets (rounded, as Keras does),
    the argmax for one-hot targets. Classes missing from ``class_weight`` weigh 1.
    """
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"class_weight must be a dict mapping class index to weight; "
            f"received {type(class_weight).__name__}"
        )
    classes = _target_classes(np.asarray(y))
    table = np.ones(max(max(class_weight, default=0), int(classes.max(initial=0))) + 1)
    for index, weight in class_weight.items():
        if int(index) < 0:
            raise ValueError(f"class_weight keys must be class indices >= 0; received {index}")
        table[int(index)] = float(weight)
    if (classes < 0).any():
        raise DataError(f"{where}: class_weight needs labels >= 0; received {classes.min()}")
    weights = table[classes]
    return weights if sample_weight is None else weights * sample_weight


def _target_classes(y: np.ndarray) -> np.ndarray:
    if y.ndim > 1 and y.shape[-1] != 1:
        return np.argmax(y, axis=-1).reshape(len(y))
    return np.rint(y.reshape(len(y))).astype(np.int64)


def check_features(x: np.ndarray, expected: tuple[int, ...], *, where: str = "batch") -> None:
    """Raise DataError unless each sample of ``x`` has the model's input shape."""
    if x.shape[1:] != expected:
        raise DataError(
            f"{where}: x has feature shape {x.shape[1:]} but the model expects {expected}. "
            f"Received: x with shape {x.shape}"
        )


def check_targets(
    y: np.ndarray, output_shape: tuple[int, ...], kind: str | None, *, where: str = "batch"
) -> np.ndarray:
    """Check targets against the model's output; return them shaped for the loss.

    Args:
        y: targets that passed :func:`check_arrays`.
        output_shape: the model's output shape without the batch dimension.
        kind: ``"sparse"`` (integer class labels), ``"categorical"`` (one-hot or
            soft labels), ``"binary"`` (values in [0, 1]), ``"regression"``, or
            ``None`` for a loss that checks its own targets (only lengths are known).
        where: the start of every error message.

    Returns:
        Sparse labels as int64 of shape ``(n, *output_shape[:-1])``; other targets
        of shape ``(n, *output_shape)`` (``(n,)`` is accepted for an output of
        ``(1,)``, as Keras does). Dtypes other than int64 are left to the caller.
    """
    if kind == "sparse":
        return _check_sparse(y, output_shape, where)
    if kind is None:
        return y
    expected = (len(y), *output_shape)
    if y.shape != expected:
        if y.ndim == 1 and output_shape == (1,):
            y = y.reshape(expected)
        else:
            raise DataError(
                f"{where}: y has shape {y.shape[1:]} per sample but the model outputs "
                f"{output_shape}. Received: y with shape {y.shape}"
            )
    _check_finite(y, "y", where)
    if kind == "binary" and ((y < 0) | (y > 1)).any():
        bad = _first_index((y < 0) | (y > 1))
        raise DataError(
            f"{where}: binary targets must be in [0, 1]; received {y[bad]} at index "
            f"{_fmt(bad)}"
        )
    return y


def _check_sparse(y: np.ndarray, output_shape: tuple[int, ...], where: str) -> np.ndarray:
    expected = (len(y), *output_shape[:-1])
    if y.shape != expected and y.shape == (*expected, 1):
        y = y.reshape(expected)
    if y.shape != expected:
        raise DataError(
            f"{where}: sparse labels must have shape {expected} (one class index per "
            f"sample) for a model output of {output_shape}. Received: y with shape {y.shape}"
        )
    if y.dtype.kind == "f":
        _check_finite(y, "y", where)
        fractional = y != np.rint(y)
        if fractional.any():
            bad = _first_index(fractional)
            raise DataError(
                f"{where}: sparse labels must be integers; received {y[bad]} at index "
                f"{_fmt(bad)}"
            )
    units = output_shape[-1] if output_shape else 1
    if y.size and (y.min() < 0 or y.max() >= units):  # two reductions, no temporaries
        bad = _first_index((y < 0) | (y >= units))
        raise DataError(
            f"{where}: label {y[bad]} at index {_fmt(bad)} is outside the model's output "
            f"range [0, {units}). Received: y[{_fmt(bad)}] = {y[bad]}"
        )
    return y.astype(np.int64, copy=False)


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _fmt(index: tuple[int, ...]) -> str:
    return str(index[0]) if len(index) == 1 else str(index)
