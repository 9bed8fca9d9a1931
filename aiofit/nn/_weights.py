"""A model's weights: packed into flat buffers, copied out and checked back in.

:func:`pack` moves every trainable weight of a chain of layers into one flat 1-D
buffer (and every gradient into a twin), leaving the layers reshaped views into
them, so an optimizer updates the whole model with a few vectorised calls.
:func:`copy_weights` and :func:`assign_weights` are ``get_weights`` and
``set_weights`` over the same layers, in Keras's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .layers.base import Layer

__all__ = ["Packed", "assign_weights", "copy_weights", "pack"]

# (flat params, flat grads, (start, stop) of each trainable weight in them)
Packed = tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]


def pack(layers: Sequence[Layer], dtype: np.dtype) -> Packed:
    """Move every trainable weight of ``layers`` into one flat buffer; layers keep views.

    Each layer's ``grads`` become views into a zeroed twin buffer of the same layout.
    """
    entries = [(layer, i) for layer in layers for i in range(len(layer.params))]
    total = sum(layer.params[i].size for layer, i in entries)
    flat, grads = np.empty(total, dtype), np.zeros(total, dtype)
    segments = []
    start = 0
    for layer, i in entries:
        param = layer.params[i]
        stop = start + param.size
        flat[start:stop] = param.ravel()
        layer.params[i] = flat[start:stop].reshape(param.shape)
        if len(layer.grads) <= i:
            layer.grads.extend([flat[:0]] * (i + 1 - len(layer.grads)))
        layer.grads[i] = grads[start:stop].reshape(param.shape)
        segments.append((start, stop))
        start = stop
    return flat, grads, segments


def copy_weights(layers: Sequence[Layer]) -> list[np.ndarray]:
    """Copies of all weights of ``layers``, layer by layer, in Keras's order."""
    return [np.array(w, copy=True) for layer in layers for w in layer.weights]


def assign_weights(layers: Sequence[Layer], weights: Sequence[Any], model_name: str) -> None:
    """Copy ``weights`` (ordered as :func:`copy_weights`) into ``layers``' arrays.

    Everything is checked before anything is copied, so a bad list changes nothing.

    Raises:
        ValueError: a weight's shape or dtype is wrong, or the count differs.
    """
    slots = [(layer, k, w) for layer in layers for k, w in enumerate(layer.weights)]
    arrays = [np.asarray(w) for w in weights]
    # Shapes first, so a list that went wrong early is reported where it went wrong.
    for (layer, k, target), arr in zip(slots, arrays, strict=False):
        if arr.shape != target.shape or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(
                f"Weight {_weight_label(layer, k)} of layer {layer.name!r} expects a "
                f"numeric array of shape {target.shape}. Received: shape {arr.shape}, "
                f"dtype {arr.dtype}"
            )
    if len(weights) != len(slots):
        raise ValueError(
            f"You called set_weights() on model {model_name!r} with a list of "
            f"{len(weights)} weights, but the model has {len(slots)}. "
            f"Received: {len(weights)} weights"
        )
    for (_, _, target), arr in zip(slots, arrays, strict=True):
        target[...] = arr


def _weight_label(layer: Layer, k: int) -> str:
    names = layer.weight_names
    return f"{layer.name}/{names[k]}" if k < len(names) else f"{layer.name}/{k}"
