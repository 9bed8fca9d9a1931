"""``Sequential``: a plain stack of layers, each feeding the next."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from . import layers as layers_module
from .layers.base import Layer
from .model import Model

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers, as ``keras.Sequential``.

    Start with ``layers.Input(shape=...)`` to build the weights at once; without
    it the model builds from the first batch it sees (as Keras does).

    Example:
        >>> from aiofit import Sequential, layers
        >>> model = Sequential([layers.Input(shape=(4,)), layers.Dense(2)], seed=0)
        >>> model.count_params()
        10

    Args:
        layers: the layers, in order (an ``Input`` may come first).
        seed: seeds the model's generator: initial weights, dropout, shuffling.
        dtype: the floating dtype of weights and computations.
        name: defaults to ``"sequential"``, ``"sequential_1"``, ...
    """

    _counter: ClassVar[int] = 0

    def __init__(self, layers: Iterable[Layer] | None = None, *, seed: int | None = None,
                 dtype: Any = "float32", name: str | None = None) -> None:
        if isinstance(layers, Layer | str) or (
                layers is not None and not isinstance(layers, Iterable)):
            raise TypeError(
                "Sequential takes a list of layers, e.g. Sequential([layers.Dense(2)]). "
                f"Received: layers={layers!r} (of type {type(layers).__name__})"
            )
        super().__init__(seed=seed, dtype=dtype, name=name or self._auto_name())
        self._declared_shape: tuple[int, ...] | None = None
        for layer in layers or ():
            self.add(layer)

    @classmethod
    def _auto_name(cls) -> str:
        n = Sequential._counter
        Sequential._counter += 1
        return "sequential" if n == 0 else f"sequential_{n}"

    def add(self, layer: Layer) -> None:
        """Append a layer (or set the input shape with ``layers.Input``).

        Raises:
            TypeError: ``layer`` is not a layer.
            ValueError: a second ``Input``, an ``Input`` after other layers, or a
                layer whose name is already taken.
        """
        shape = _input_shape_of(layer)
        if shape is not None:
            self._set_input(shape, layer)
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                "Only instances of aiofit.layers.Layer can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(
                "All layers added to a Sequential model should have unique names. "
                f"Name {layer.name!r} is already the name of a layer in this model. "
                f"Received: {layer!r}"
            )
        self._layers.append(layer)
        if self.built and self._input_shape is not None:
            self._rebuild_with(layer)

    def _set_input(self, shape: tuple[int, ...], layer: Any) -> None:
        if self._layers or self._declared_shape is not None:
            raise ValueError(
                "An Input can only be the first entry of a Sequential model. "
                f"Received: {layer!r} after {len(self._layers)} layer(s)"
            )
        self._declared_shape = shape
        self._build(shape)

    def _rebuild_with(self, layer: Layer) -> None:
        # Earlier layers keep their weights; the flat buffers are repacked to include
        # the new layer, and the optimizer is built again for the new buffer.
        previous = self._layers[-2].output_shape if len(self._layers) > 1 else None
        shape = previous if previous is not None else self._input_shape
        assert shape is not None
        layer.build(shape, self.rng, self.dtype)
        self._pack()

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments and the layers (via ``layers.serialize``)."""
        from .layers import serialize

        return {
            "name": self.name,
            "seed": self.seed,
            "dtype": self.dtype.name,
            "input_shape": None if self._input_shape is None else list(self._input_shape),
            "layers": [serialize(layer) for layer in self._layers],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """Rebuild an (unbuilt if it had no input shape) model from ``get_config()``."""
        from .layers import deserialize

        model = cls([deserialize(spec) for spec in config["layers"]], seed=config["seed"],
                    dtype=config["dtype"], name=config["name"])
        if config.get("input_shape") is not None:
            model._build(tuple(int(d) for d in config["input_shape"]))
        return model


def _input_shape_of(layer: Any) -> tuple[int, ...] | None:
    """The declared shape if ``layer`` is an ``Input``, else None."""

    if isinstance(layer, layers_module.Input):
        return tuple(int(d) for d in layer.shape)
    return None
