"""Layers (pure numpy) and their serialization.

``serialize(layer)`` gives ``{"class_name": ..., "config": ...}`` (JSON-ready);
``deserialize`` turns it back into an unbuilt layer. Custom layers become
loadable by decorating their class with :func:`register`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .base import Layer
from .core import Activation, Dropout, Flatten, Input
from .dense import Dense
from .normalization import BatchNormalization

__all__ = [
    "Activation", "BatchNormalization", "Dense", "Dropout", "Flatten", "Input", "Layer",
    "deserialize", "get", "register", "serialize",
]

L = TypeVar("L", bound=type[Layer])

_REGISTRY: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Activation, BatchNormalization, Dense, Dropout, Flatten, Input)
}


def register(cls: L) -> L:
    """Class decorator: make a custom Layer subclass known to :func:`deserialize`."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"Only Layer subclasses can be registered. Received: {cls!r}")
    _REGISTRY[cls.__name__] = cls
    return cls


def get(class_name: str) -> type[Layer]:
    """The layer class named ``class_name`` (e.g. ``"Dense"``).

    Raises:
        ValueError: if no such layer is known.
    """
    if class_name not in _REGISTRY:
        raise ValueError(
            f"Unknown layer: {class_name!r}. Expected one of [{', '.join(sorted(_REGISTRY))}] "
            f"or a class registered with aiofit.layers.register. Received: {class_name!r}"
        )
    return _REGISTRY[class_name]


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": type name, "config": layer.get_config()}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict[str, Any]) -> Layer:
    """A new, unbuilt layer from :func:`serialize`'s output.

    Raises:
        ValueError: if ``config`` is not ``{"class_name": str, "config": dict}`` or the
            class is unknown.
    """
    if (
        not isinstance(config, dict)
        or not isinstance(config.get("class_name"), str)
        or not isinstance(config.get("config", {}), dict)
    ):
        raise ValueError(
            "A layer config must be a dict {'class_name': str, 'config': dict}. "
            f"Received: {config!r}"
        )
    return get(config["class_name"]).from_config(dict(config.get("config", {})))
