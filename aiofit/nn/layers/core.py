"""The small layers: ``Input``, ``Activation``, ``Flatten`` and ``Dropout``.

As with every layer here, arrays returned by ``forward``/``backward`` may be
buffers the layer reuses: valid until the layer's next call of the same method.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import activations
from .base import Layer, Shape

__all__ = ["Activation", "Dropout", "Flatten", "Input"]


def _check_shape(shape: Any) -> Shape:
    dims = (shape,) if isinstance(shape, int | np.integer) else shape
    try:
        result = tuple(int(d) for d in dims)
        valid = all(d > 0 and d == d_in for d, d_in in zip(result, dims, strict=True))
    except (TypeError, ValueError):
        valid = False
    if not valid or isinstance(shape, bool):
        raise ValueError(
            "Input `shape` must be a tuple of positive integers, without the batch "
            f"dimension. Received: shape={shape!r}"
        )
    return result


class Input(Layer):
    """Declares the shape of one sample (without the batch axis); forward is identity.

    Example:
        >>> Input(shape=(20,)).shape
        (20,)
    """

    def __init__(self, shape: Any, name: str | None = None) -> None:
        self.shape = _check_shape(shape)
        super().__init__(name)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.shape

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        if tuple(input_shape) != self.shape:
            raise ValueError(
                f"Input {self.name!r} declares shape {self.shape}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return super().build(input_shape, rng, dtype)

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        return X

    def backward(self, dY: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dY if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "name": self.name}


class Activation(Layer):
    """Applies an activation on its own, e.g. ``Activation("softmax")``."""

    def __init__(self, activation: Any, name: str | None = None) -> None:
        super().__init__(name)
        self.activation = activations.get(activation)
        self._A: np.ndarray | None = None
        self._dX: np.ndarray | None = None

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        if self._A is None or self._A.shape != X.shape or self._A.dtype != X.dtype:
            self._A = np.empty_like(X)
            self._dX = None
        self._X = X
        # never in place: X belongs to the previous layer, which may need it
        return self.activation.forward(X, out=self._A)

    def backward(self, dY: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        assert self._A is not None, "backward() called before forward()"
        if self._dX is None:
            self._dX = np.empty_like(self._A)
        return self.activation.backward(self._X, self._A, dY, out=self._dX)

    @property
    def ends_in_softmax(self) -> bool:
        """True for ``Activation("softmax")``: its input is the ``Z`` of a softmax."""
        return type(self.activation) is activations.Softmax

    def backward_from_z(self, dZ: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """d loss / d input is ``dZ`` itself: the softmax's Z is this layer's input."""
        return dZ if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {"activation": activations.serialize(self.activation), "name": self.name}


class Flatten(Layer):
    """Reshapes ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)`` (a view)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        self._shape = X.shape
        return X.reshape(X.shape[0], -1)

    def backward(self, dY: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dY.reshape(self._shape) if need_dx else None


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability ``rate`` and
    scale the kept ones by ``1 / (1 - rate)``; identity at inference.

    Args:
        rate: fraction of units to drop, in ``[0, 1)``.
        seed: if given, the layer draws from its own ``np.random.default_rng(seed)``;
            otherwise from the generator the model passes to ``build`` (the model's
            seed then makes dropout reproducible). The generator is ``self.rng``.
        name: layer name.
    """

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ValueError(
                "Invalid value received for argument `rate`. Expected a float value "
                f"in [0, 1). Received: rate={rate!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
        super().__init__(name)
        self.rate = float(rate)
        self.seed = seed
        self.rng: np.random.Generator | None = None
        empty = np.empty(0)
        self._keep, self._Y, self._dX, self._u = empty.astype(np.bool_), empty, empty, empty
        self._dropped = False

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        self.rng = rng if self.seed is None else np.random.default_rng(self.seed)
        return super().build(input_shape, rng, dtype)

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        self._dropped = training and self.rate > 0
        if not self._dropped:
            return X
        if self.rng is None:
            raise RuntimeError(f"Dropout layer {self.name!r} must be built before training")
        if self._Y.shape != X.shape or self._Y.dtype != X.dtype:
            self._keep = np.empty(X.shape, np.bool_)
            self._Y, self._dX = np.empty_like(X), np.empty_like(X)
            self._u = np.empty(X.shape, X.dtype if X.dtype == np.float32 else np.float64)
        self.rng.random(out=self._u, dtype=self._u.dtype.type)
        np.greater_equal(self._u, self.rate, out=self._keep)
        Y = np.multiply(X, self._keep, out=self._Y)
        Y *= 1.0 / (1.0 - self.rate)
        return Y

    def backward(self, dY: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        if not self._dropped:
            return dY
        dX = np.multiply(dY, self._keep, out=self._dX)
        dX *= 1.0 / (1.0 - self.rate)
        return dX

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed, "name": self.name}
