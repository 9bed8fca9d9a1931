"""Losses with their gradients, following Keras 3's formulas and reduction.

Every loss computes a per-sample value (Keras's per-element loss averaged over
every non-batch axis it leaves) and reduces it the Keras 3 default way,
``"sum_over_batch_size"``: ``sum(per_sample * sample_weight) / batch_size``.
The divisor is the batch size, not the sum of the weights.

``value_and_grad`` returns that value and ``dL/dy_pred`` (with the ``1/N`` and
the weights folded in), so a model can start backpropagation from it::

    loss = losses.get("sparse_categorical_crossentropy")
    value, d_pred = loss.value_and_grad(y, model_output)

Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does, and clipped
elements get a zero gradient; ``from_logits=True`` uses log-sum-exp and
log-sigmoid identities instead, so logits of any size give finite values.
"""

from __future__ import annotations

from typing import Any

from .base import EPSILON, Kind, Loss
from .crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    sparse_labels,
)
from .regression import Huber, MeanAbsoluteError, MeanSquaredError

__all__ = [
    "EPSILON",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Huber",
    "Kind",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "get",
    "serialize",
    "sparse_labels",
]


_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (
        MeanSquaredError,
        MeanAbsoluteError,
        Huber,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
    )
}

_ALIASES: dict[str, type[Loss]] = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier: str | Loss | dict[str, Any]) -> Loss:
    """A loss from a name, a ``Loss`` instance or ``{"class_name", "config"}``.

    Names are the Keras ones (``"mse"``, ``"sparse_categorical_crossentropy"``,
    ...) or class names (``"Huber"``). The instance built from a name keeps
    Keras's default ``name`` (``get("mse").name == "mean_squared_error"``).

    Raises:
        ValueError: for an unknown identifier.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is not None:
            return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(
        f"Unknown loss: expected one of {sorted(_ALIASES)}, a Loss instance or a "
        f"{{'class_name', 'config'}} dict. Received: {identifier!r}"
    )


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name", "config"}``, JSON-able; :func:`get` turns it back into a loss."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
