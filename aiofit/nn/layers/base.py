"""The layer contract: forward and backward side by side, weights as views.

A layer owns two lists of arrays, in Keras's order:

* ``params``: trainable weights (Dense: kernel ``(in, out)`` then bias ``(out,)``;
  BatchNormalization: gamma, beta), with ``grads`` the same shapes, same order;
* ``state``: non-trainable weights (BatchNormalization: moving_mean,
  moving_variance), updated in ``forward(training=True)``.

``get_weights()`` order is ``params + state`` (which is Keras's order for every
layer here). After ``build``, the model packs every layer's params into one flat
float buffer and replaces ``params[i]`` / ``grads[i]`` with views into it, so
optimizers update the whole model in a handful of vectorised calls. Layers must
therefore always write weights and gradients *in place* (``out=``, ``[...] =``)
and never rebind ``self.params[i]`` or ``self.grads[i]`` after build.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

__all__ = ["Layer"]

Shape = tuple[int, ...]


class Layer:
    """Base class. Subclasses implement ``build``, ``forward`` and ``backward``."""

    #: names of ``params`` then ``state`` entries, e.g. ("kernel", "bias"); a layer
    #: whose weights depend on its arguments sets it per instance
    weight_names: tuple[str, ...] = ()
    _counter: ClassVar[dict[str, int]] = {}

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self._auto_name()
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.state: list[np.ndarray] = []
        self.input_shape: Shape | None = None  # without the batch dimension
        self.output_shape: Shape | None = None
        self.built = False
        #: True when whoever calls ``backward`` has no further use for ``dY``: the
        #: layer may then write into it (a model sets this on its own layers, whose
        #: gradients flow through buffers nobody reads twice).
        self.scratch_dy = False

    def _auto_name(self) -> str:
        # Keras-style default names: dense, dense_1, ... (process-wide counter per class)
        base = "".join("_" + c.lower() if c.isupper() else c for c in type(self).__name__)
        base = base.lstrip("_")
        n = Layer._counter.get(base, 0)
        Layer._counter[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: np.dtype) -> Shape:
        """Create weights for inputs of ``input_shape``; return the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dY: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Fill ``self.grads`` from the last forward; return dL/dX if ``need_dx``."""
        raise NotImplementedError

    @property
    def ends_in_softmax(self) -> bool:
        """True when the output is ``softmax(Z)`` over the last axis of some ``Z`` that
        :meth:`backward_from_z` can start the backward pass from."""
        return False

    def backward_from_z(self, dZ: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """:meth:`backward` from d loss / d ``Z`` (layers that end in a softmax): a
        cross-entropy gives that gradient directly, and the model hands it over."""
        raise NotImplementedError(f"{type(self).__name__} does not end in a softmax")

    def regularization_loss(self) -> float:
        """Penalty added to the loss (Keras adds it to the reported ``loss``)."""
        return 0.0

    def add_regularization_grads(self) -> None:
        """Add the penalty's gradient into ``self.grads`` (after ``backward``)."""

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    @property
    def weights(self) -> list[np.ndarray]:
        return [*self.params, *self.state]

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
