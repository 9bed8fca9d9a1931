"""Optimizers that update a model's flat parameter buffer in place, as Keras 3.

Each step is a handful of vectorised numpy calls over the whole model (see
:mod:`aiofit.nn.optimizers.base`)::

    opt = optimizers.get("adam")
    opt.build(params, segments)     # flat float32 buffer + where each weight lies
    opt.apply(params, grads)        # one step, in place
    opt.learning_rate = 1e-4        # settable between steps
"""

from __future__ import annotations

from typing import Any

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .base import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "get", "serialize"]

_CLASSES: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def get(identifier: str | Optimizer | dict[str, Any]) -> Optimizer:
    """An optimizer from a name, an instance or ``{"class_name", "config"}``.

    Names are case-insensitive: ``"sgd"``, ``"adam"``, ``"adamw"``,
    ``"rmsprop"``, ``"adagrad"``; a name gives the optimizer with Keras's
    defaults. An instance is returned as it is.

    Raises:
        ValueError: for an unknown identifier.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _CLASSES:
        return _CLASSES[identifier.lower()].from_config({})
    if isinstance(identifier, dict):
        cls = _CLASSES.get(str(identifier.get("class_name", "")).lower())
        if cls is not None:
            return cls.from_config(dict(identifier.get("config", {})))
    raise ValueError(
        f"Unknown optimizer: expected one of {sorted(_CLASSES)}, an Optimizer instance or "
        f"a {{'class_name', 'config'}} dict. Received: {identifier!r}"
    )


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name", "config"}``, JSON-able; :func:`get` turns it back."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
