"""Batch preparation for :class:`aiofit.nn.Model`'s batch API.

:func:`prepare_batch` checks a ``(x, y, sample_weight)`` batch against a chain of
layers and casts it to the model's dtype. Every check happens here, before the
model changes any state (weights, rng, build), so a bad batch changes nothing.
A model not built yet is checked against the shapes its layers would produce.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._exceptions import DataError
from .layers.base import Layer
from .validation import check_arrays, check_features, check_targets
from .validation import class_weight_to_sample_weight as _class_weight

__all__ = ["PreparedBatch", "Shape", "check_inputs", "output_shape_for", "prepare_batch"]

Shape = tuple[int, ...]
PreparedBatch = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def output_shape_for(layers: Sequence[Layer], feature_shape: Shape) -> Shape:
    """The output shape of one sample of ``feature_shape`` (raises if a layer refuses it)."""
    shape = feature_shape
    for layer in layers:
        shape = tuple(layer.compute_output_shape(shape))
    return shape


def check_inputs(
    layers: Sequence[Layer], input_shape: Shape | None, x: Any, where: str
) -> np.ndarray:
    """``x`` as an array that ``layers`` accept (built for ``input_shape``, or not yet)."""
    xa, _, _ = check_arrays(x, where=where)
    if input_shape is not None:
        check_features(xa, input_shape, where=where)
    else:
        output_shape_for(layers, xa.shape[1:])
    return xa


def prepare_batch(
    layers: Sequence[Layer],
    input_shape: Shape | None,
    batch: tuple[Any, Any, Any],
    class_weight: dict[int, float] | None,
    *,
    kind: str | None,
    dtype: np.dtype,
    where: str,
) -> PreparedBatch:
    """``(X, Y, SW)`` of ``batch = (x, y, sample_weight)``, checked and cast.

    Args:
        layers: the model's layers, built for ``input_shape`` (None: not built yet).
        input_shape: the shape of one input sample the model is built for, or None.
        batch: the user's ``(x, y, sample_weight)``; ``sample_weight`` may be None.
        class_weight: ``{class index: weight}`` folded into the sample weights, or None.
        kind: the compiled loss's target kind (``"sparse"`` keeps integer labels).
        dtype: the model's dtype for ``X``, ``SW`` and non-sparse ``Y``.
        where: how error messages name the batch.

    Raises:
        aiofit.DataError: the batch is malformed.
    """
    x, y, sample_weight = batch
    if y is None:
        raise DataError(f"{where}: y is required to compute the loss. Received: y=None")
    # The batch API runs where the step runs (not on an event loop): BLAS may check x.
    xa, ya, sw = check_arrays(x, y, sample_weight, where=where, use_blas=True)
    assert ya is not None
    if input_shape is not None:
        check_features(xa, input_shape, where=where)
        out_shape = (layers[-1].output_shape if layers else input_shape) or ()
    else:
        out_shape = output_shape_for(layers, xa.shape[1:])
    Y = check_targets(ya, out_shape, kind, where=where)
    if class_weight is not None:
        sw = _class_weight(Y, class_weight, sw, where=where)
    if kind != "sparse":
        Y = np.asarray(Y, dtype)
    SW = None if sw is None else np.asarray(sw, dtype)
    return np.asarray(xa, dtype), Y, SW
