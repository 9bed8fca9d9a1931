"""``Dense``: ``Y = activation(X @ kernel + bias)``, activation fused into the layer.

Speed notes (the train step of an MLP is three of these): every intermediate lives
in a buffer allocated once per batch size; matmuls write with ``out=``;
activations whose backward needs only their output run in place on ``Z``, and
backward writes ``dZ`` over ``dY`` when the model says it may (``scratch_dy``); the
first layer skips its ``dX`` matmul when the model passes ``need_dx=False``; and
under a softmax, the model may start the backward pass from ``dZ`` itself
(:meth:`Dense.backward_from_z`), which a cross-entropy loss computes directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations, initializers, regularizers
from .base import Layer, Shape

__all__ = ["Dense"]


class Dense(Layer):
    """A fully connected layer with kernel ``(in, out)`` and bias ``(out,)``.

    Args:
        units: output size, a positive int.
        activation: a name (``"relu"``), ``None`` (linear) or an Activation.
        use_bias: whether to add a bias.
        kernel_initializer: name or Initializer for the kernel.
        bias_initializer: name or Initializer for the bias.
        kernel_regularizer: ``None``, ``"l1"``/``"l2"``/``"l1l2"`` or a Regularizer.
        bias_regularizer: same, for the bias.
        name: layer name; Keras-style automatic name when ``None``.

    The array returned by :meth:`forward` (and by :meth:`backward`) is a buffer
    the layer reuses: it is valid until the layer's next forward (backward) call.

    Example:
        >>> import numpy as np
        >>> layer = Dense(3, activation="relu")
        >>> layer.build((4,), np.random.default_rng(0), np.float32)
        (3,)
        >>> layer.forward(np.ones((2, 4), np.float32), training=False).shape
        (2, 3)
    """

    weight_names = ("kernel", "bias")

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        name: str | None = None,
    ) -> None:
        if isinstance(units, bool) or not isinstance(units, int | np.integer) or units <= 0:
            raise ValueError(
                f"Received an invalid value for `units`, expected a positive integer. "
                f"Received: units={units!r}"
            )
        super().__init__(name)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._linear = isinstance(self.activation, activations.Linear)
        self._batch = -1

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self.units,)

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        """Create the kernel (then the bias) from ``rng``; inputs must be ``(batch, features)``."""
        input_shape = tuple(input_shape)
        if len(input_shape) != 1:
            raise ValueError(
                f"Layer {self.name!r} (Dense) expects inputs of rank 2, (batch_size, features); "
                f"add a Flatten layer before it. Received: input_shape={(None, *input_shape)}"
            )
        self._dtype = np.dtype(dtype)
        kernel = self.kernel_initializer((input_shape[0], self.units), rng, self._dtype)
        self.params = [kernel]
        if self.use_bias:
            self.params.append(self.bias_initializer((self.units,), rng, self._dtype))
        self.grads = [np.zeros_like(p) for p in self.params]
        self._batch = -1
        return super().build(input_shape, rng, dtype)

    def _allocate(self, n: int) -> None:
        dtype, shape = self._dtype, (n, self.units)
        self._Z = np.empty(shape, dtype)
        inplace = self._linear or self.activation.inplace_ok
        self._A = self._Z if inplace else np.empty(shape, dtype)
        self._dZ = None if self._linear else np.empty(shape, dtype)
        self._dX: np.ndarray | None = None
        # the bias gradient as ones @ dZ: BLAS's gemv beats numpy's column sums 2x
        self._ones = np.ones(n, dtype)
        self._batch = n

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        if X.dtype != self._dtype:
            X = X.astype(self._dtype)
        if X.shape[0] != self._batch:
            self._allocate(X.shape[0])
        self._X = X
        Z = np.matmul(X, self.params[0], out=self._Z)
        if self.use_bias:
            Z += self.params[1]
        if self._linear:
            return Z
        return self.activation.forward(Z, out=self._A)

    def backward(self, dY: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if dY.dtype != self._dtype:
            dY = dY.astype(self._dtype)
        if self._linear:
            dZ = dY
        else:
            # with an in-place activation _Z holds A: backward then reads only A.
            # Writing dZ over a dead dY spares a cold buffer (~1.5% of an MLP step).
            reuse = self.scratch_dy and self.activation.backward_in_place
            dZ = self.activation.backward(self._Z, self._A, dY, out=dY if reuse else self._dZ)
        return self.backward_from_z(dZ, need_dx)

    @property
    def ends_in_softmax(self) -> bool:
        """True when the output is ``softmax(Z)`` over the last axis, ``Z = X @ kernel + bias``."""
        return type(self.activation) is activations.Softmax

    def backward_from_z(self, dZ: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """:meth:`backward` from the gradient with respect to ``Z`` rather than the output.

        For a loss that differentiates through the activation itself, as
        cross-entropy does through a softmax (the model hands such a ``dZ`` over).
        """
        if self.use_bias:  # first, while dZ is still in this core's cache (~2% of the pair)
            np.matmul(self._ones, dZ, out=self.grads[1])
        np.matmul(self._X.T, dZ, out=self.grads[0])
        if not need_dx:
            return None
        if self._dX is None:
            self._dX = np.empty(self._X.shape, self._dtype)
        return np.matmul(dZ, self.params[0].T, out=self._dX)

    def _regularized(self) -> list[tuple[regularizers.Regularizer, int]]:
        pairs = [(self.kernel_regularizer, 0), (self.bias_regularizer, 1)]
        return [(r, i) for r, i in pairs if r is not None and i < len(self.params)]

    def regularization_loss(self) -> float:
        return sum((reg(self.params[i]) for reg, i in self._regularized()), 0.0)

    def add_regularization_grads(self) -> None:
        for reg, i in self._regularized():
            reg.add_gradient(self.params[i], self.grads[i])

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }
