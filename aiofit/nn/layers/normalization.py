"""``BatchNormalization`` with Keras 3 semantics.

Training normalises with the batch mean and the *biased* batch variance and
updates ``moving = moving * momentum + batch * (1 - momentum)``; inference uses
the moving statistics. Weights, in Keras's order: gamma (if ``scale``), beta (if
``center``), then the non-trainable moving_mean and moving_variance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer, Shape

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    """Normalise each feature along ``axis`` over the batch (and any other axes).

    Args:
        axis: the feature axis, counted with the batch axis (``-1``: last).
        momentum: weight of the old value in the moving statistics.
        epsilon: added to the variance before the square root.
        center: learn an offset ``beta``.
        scale: learn a factor ``gamma``.
        name: layer name.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        name: str | None = None,
    ) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"`axis` must be an int. Received: axis={axis!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be in [0, 1]. Received: momentum={momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon!r}")
        super().__init__(name)
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        names = ("gamma",) * self.scale + ("beta",) * self.center
        self.weight_names = (*names, "moving_mean", "moving_variance")

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        input_shape = tuple(input_shape)
        ndim = len(input_shape) + 1
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(
                f"BatchNormalization {self.name!r}: `axis` must name a feature axis of "
                f"inputs of shape {(None, *input_shape)}. Received: axis={self.axis}"
            )
        ax = self.axis % ndim
        self._reduce = tuple(i for i in range(ndim) if i != ax)
        self._bshape = tuple(input_shape[ax - 1] if i == ax else 1 for i in range(ndim))
        features = input_shape[ax - 1]
        self.params = []
        if self.scale:
            self.params.append(np.ones(features, dtype))
        if self.center:
            self.params.append(np.zeros(features, dtype))
        self.grads = [np.zeros_like(p) for p in self.params]
        self.state = [np.zeros(features, dtype), np.ones(features, dtype)]
        return super().build(input_shape, rng, dtype)

    @property
    def _gamma(self) -> np.ndarray | None:
        return self.params[0].reshape(self._bshape) if self.scale else None

    @property
    def _beta(self) -> np.ndarray | None:
        return self.params[-1].reshape(self._bshape) if self.center else None

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        self._training = training
        if training:
            mean = X.mean(axis=self._reduce, keepdims=True)
            xc = X - mean
            var = np.mean(xc * xc, axis=self._reduce, keepdims=True)
            self._update_moving(mean, var)
        else:
            mean = self.state[0].reshape(self._bshape)
            var = self.state[1].reshape(self._bshape)
            xc = X - mean
        self._inv = 1.0 / np.sqrt(var + self.epsilon)
        self._xhat = xc * self._inv
        Y = self._xhat * self._gamma if self.scale else self._xhat.copy()
        if self.center:
            Y += self._beta
        return Y

    def _update_moving(self, mean: np.ndarray, var: np.ndarray) -> None:
        m = self.momentum
        for moving, batch in zip(self.state, (mean, var), strict=True):
            moving *= m
            moving += (1.0 - m) * batch.reshape(-1)

    def backward(self, dY: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        xhat, red = self._xhat, self._reduce
        if self.scale:
            self.grads[0][...] = (dY * xhat).sum(axis=red)
        if self.center:
            self.grads[-1][...] = dY.sum(axis=red)
        if not need_dx:
            return None
        dxhat = dY * self._gamma if self.scale else dY
        if not self._training:  # the moving statistics are constants
            return dxhat * self._inv
        # the batch mean and variance depend on X too
        mean_d = dxhat.mean(axis=red, keepdims=True)
        mean_dx = (dxhat * xhat).mean(axis=red, keepdims=True)
        return self._inv * (dxhat - mean_d - xhat * mean_dx)

    def get_config(self) -> dict[str, Any]:
        return {
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale, "name": self.name,
        }
