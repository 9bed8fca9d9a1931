"""Activations: each a small object with ``forward(Z) -> A`` and ``backward(Z, A, dA) -> dZ``.

``get(identifier)`` turns a Keras name (``"relu"``), ``None`` (linear) or an
instance into an :class:`Activation`. Both methods take an optional ``out=``
array to write into, and activations whose backward reads only ``A`` (never
``Z``) say so with ``inplace_ok``: a layer may then run ``forward(Z, out=Z)``
and call ``backward(A, A, dA)``, which is what Dense does to stay allocation-free.

Example:
    >>> import numpy as np
    >>> get("relu").forward(np.array([-1.0, 2.0]))
    array([0., 2.])
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._config import Configured, from_identifier, lookup

__all__ = [
    "ELU", "GELU", "Activation", "LeakyReLU", "Linear", "ReLU", "Sigmoid", "Softmax",
    "Softplus", "Swish", "Tanh", "erfc", "get", "normal_cdf", "serialize",
]

Array = np.ndarray


def _into(result: Array, out: Array | None) -> Array:
    if out is None or out is result:
        return result
    np.copyto(out, result)
    return out


class Activation(Configured):
    """Base class: an elementwise (or row-wise) map and its vector-Jacobian product."""

    name: ClassVar[str] = ""
    #: True when ``backward`` reads only ``A``, so ``forward`` may overwrite ``Z``.
    inplace_ok: ClassVar[bool] = False
    #: True when ``backward(Z, A, dA, out=dA)`` is correct: nothing reads ``dA``
    #: after ``out`` is written (every built-in; a subclass must say so itself).
    backward_in_place: ClassVar[bool] = False

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        """Return ``A = f(Z)``, written into ``out`` when given (``out`` may be ``Z``)."""
        raise NotImplementedError

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        """Return ``dZ = dA * f'(Z)`` given the ``A`` of the forward pass."""
        raise NotImplementedError

    def __call__(self, Z: Array) -> Array:
        return self.forward(Z)


class Linear(Activation):
    """Identity, ``f(x) = x`` (Keras ``"linear"``; also what ``None`` means)."""

    name = "linear"
    backward_in_place = True
    inplace_ok = True

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        return _into(Z, out)

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        return _into(dA, out)


class ReLU(Activation):
    """``max(x, 0)``; the gradient at 0 is taken as 0, as in Keras."""

    name = "relu"
    backward_in_place = True
    inplace_ok = True

    def __init__(self) -> None:
        self._zeros = np.zeros(0)

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        Z = np.asarray(Z)
        zeros = self._zeros  # a local: an instance may be shared by models in two threads
        if zeros.shape != Z.shape or zeros.dtype != Z.dtype:
            # numpy's maximum against a scalar misses its SIMD loop: against an array
            # of zeros it runs 2-3x faster (measured, numpy 2.4, float32). Read-only.
            zeros = self._zeros = np.zeros(Z.shape, Z.dtype)
        return np.maximum(Z, zeros, out=out)

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        return np.multiply(dA, A > 0, out=out)


class LeakyReLU(Activation):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise (Keras 3 default slope 0.2)."""

    name = "leaky_relu"
    backward_in_place = True

    def __init__(self, negative_slope: float = 0.2) -> None:
        self.negative_slope = float(negative_slope)

    @property
    def inplace_ok(self) -> bool:  # type: ignore[override]
        # sign(A) == sign(Z) only for a non-negative slope
        return self.negative_slope >= 0

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        neg = np.minimum(Z, 0) * self.negative_slope
        A = np.maximum(Z, 0, out=out)
        A += neg
        return A

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        pos = (A > 0) if self.inplace_ok else (Z > 0)
        return _into(np.where(pos, dA, dA * self.negative_slope), out)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


class ELU(Activation):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""

    name = "elu"
    backward_in_place = True

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = float(alpha)

    @property
    def inplace_ok(self) -> bool:  # type: ignore[override]
        return self.alpha > 0

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        neg = np.expm1(np.minimum(Z, 0)) * self.alpha
        A = np.maximum(Z, 0, out=out)
        A += neg
        return A

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        # for x <= 0, f'(x) = alpha * exp(x) = f(x) + alpha
        pos = (A > 0) if self.inplace_ok else (Z > 0)
        slope = A + self.alpha if self.inplace_ok else self.alpha * np.exp(np.minimum(Z, 0))
        return _into(np.where(pos, dA, dA * slope), out)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class GELU(Activation):
    """Gaussian error linear unit, ``x * Phi(x)`` (Keras 3 default ``approximate=False``).

    The exact form evaluates ``Phi`` with :func:`erfc` (Cody's rational
    approximations, relative error < 1e-15 in float64). ``approximate=True`` is
    the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """

    name = "gelu"
    backward_in_place = True
    _C = 0.7978845608028654  # sqrt(2 / pi)

    def __init__(self, approximate: bool = False) -> None:
        self.approximate = bool(approximate)

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        if self.approximate:
            t = np.tanh(self._C * (Z + 0.044715 * Z**3))
            return np.multiply(0.5 * Z, 1.0 + t, out=out)
        return np.multiply(Z, normal_cdf(Z), out=out)

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        if self.approximate:
            t = np.tanh(self._C * (Z + 0.044715 * Z**3))
            d = 0.5 * (1.0 + t) + 0.5 * Z * (1.0 - t * t) * self._C * (1.0 + 0.134145 * Z * Z)
        else:
            d = normal_cdf(Z) + Z * normal_pdf(Z)
        return np.multiply(dA, d, out=out)

    def get_config(self) -> dict[str, Any]:
        return {"approximate": self.approximate}


def _sigmoid(Z: Array) -> Array:
    # exp(-|z|) never overflows; both branches are then accurate to the last bit
    e = np.exp(-np.abs(Z))
    r = 1.0 / (1.0 + e)
    return np.where(Z >= 0, r, e * r)


class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``, computed without overflow for any input."""

    name = "sigmoid"
    backward_in_place = True
    inplace_ok = True

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        return _into(_sigmoid(Z), out)

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        return np.multiply(dA, A * (1.0 - A), out=out)


class Tanh(Activation):
    """Hyperbolic tangent."""

    name = "tanh"
    backward_in_place = True
    inplace_ok = True

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        return np.tanh(Z, out=out)

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        return np.multiply(dA, 1.0 - A * A, out=out)


class Softmax(Activation):
    """Softmax over the last axis, shifted by the row maximum so it never overflows."""

    name = "softmax"
    backward_in_place = True
    inplace_ok = True

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        A = np.subtract(Z, Z.max(axis=-1, keepdims=True), out=out)
        np.exp(A, out=A)
        A /= A.sum(axis=-1, keepdims=True)
        return A

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        s = np.einsum("...i,...i->...", dA, A)[..., None]
        dZ = np.subtract(dA, s, out=out)
        dZ *= A
        return dZ


class Softplus(Activation):
    """``log(1 + exp(x))``, stable for large ``|x|`` (``softplus(1000) == 1000``)."""

    name = "softplus"
    backward_in_place = True
    inplace_ok = True

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        tail = np.log1p(np.exp(-np.abs(Z)))
        A = np.maximum(Z, 0, out=out)
        A += tail
        return A

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        # f'(x) = sigmoid(x) = 1 - exp(-f(x)), accurate in both tails
        return np.multiply(dA, -np.expm1(-A), out=out)


class Swish(Activation):
    """``x * sigmoid(x)`` (Keras ``"swish"``, alias ``"silu"``)."""

    name = "swish"
    backward_in_place = True

    def forward(self, Z: Array, out: Array | None = None) -> Array:
        return np.multiply(Z, _sigmoid(Z), out=out)

    def backward(self, Z: Array, A: Array, dA: Array, out: Array | None = None) -> Array:
        s = _sigmoid(Z)
        return np.multiply(dA, s * (1.0 + Z * (1.0 - s)), out=out)


_REGISTRY: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Linear, ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, Softmax, Softplus, Swish)
}
_ALIASES = {"silu": "swish"}


def get(identifier: str | Activation | dict[str, Any] | None) -> Activation:
    """Return the activation for a name, ``None`` (linear), a serialized dict or an instance.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else that is not an activation.
    """
    if identifier is None:
        return Linear()
    return from_identifier(identifier, "activation", Activation, _lookup,
                           "a name, a config dict, None")


def _lookup(name: Any) -> type[Activation]:
    key = _ALIASES.get(name, name) if isinstance(name, str) else name
    return lookup("activation", _REGISTRY, key, [*_REGISTRY, *_ALIASES])


def serialize(activation: Activation) -> str | dict[str, Any]:
    """The JSON form used in layer configs: the bare name unless arguments differ."""
    config = activation.get_config()
    if config == type(activation)().get_config():
        return activation.name
    return {"class_name": activation.name, "config": config}


# --- erfc for GELU ---------------------------------------------------------------
# numpy has no erf and scipy is not a dependency. W. J. Cody's rational Chebyshev
# approximations (Math. Comp. 23, 1969, 631-638; coefficients of netlib
# specfun/CALERF), evaluated region by region on whole arrays: relative error
# below 1e-15 in float64 (checked against math.erfc in the tests).

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 0.56418958354775628695
_INV_SQRT_2 = 0.70710678118654752440
_INV_SQRT_2PI = 0.39894228040143267794
# erfc(27) ~ 5e-319: clipping there keeps y*y finite in float32 without changing results
_Y_MAX = 27.0


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    # exp(-y^2) split as exp(-ysq^2) * exp(-(y-ysq)(y+ysq)) to avoid cancellation (Cody)
    ysq = np.trunc(y * 16.0) / 16.0
    return np.exp(-ysq * ysq) * np.exp(-(y - ysq) * (y + ysq))


def _erfc_small(y: np.ndarray) -> np.ndarray:  # 0 <= y <= 0.46875
    ysq = y * y
    num, den = _A[4] * ysq, ysq
    for i in range(3):
        num, den = (num + _A[i]) * ysq, (den + _B[i]) * ysq
    return 1.0 - y * (num + _A[3]) / (den + _B[3])


def _erfc_mid(y: np.ndarray) -> np.ndarray:  # 0.46875 < y <= 4
    num, den = _C[8] * y, y
    for i in range(7):
        num, den = (num + _C[i]) * y, (den + _D[i]) * y
    return _exp_minus_square(y) * (num + _C[7]) / (den + _D[7])


def _erfc_large(y: np.ndarray) -> np.ndarray:  # y > 4
    inv = 1.0 / (y * y)
    num, den = _P[5] * inv, inv
    for i in range(4):
        num, den = (num + _P[i]) * inv, (den + _Q[i]) * inv
    r = inv * (num + _P[4]) / (den + _Q[4])
    return _exp_minus_square(y) * (_INV_SQRT_PI - r) / y


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, elementwise, in the dtype of ``x``."""
    x = np.asarray(x)
    y = np.minimum(np.abs(x), _Y_MAX)
    out = np.empty_like(y)
    small = y <= 0.46875
    large = y > 4.0
    mid = ~(small | large)
    for mask, fn in ((small, _erfc_small), (mid, _erfc_mid), (large, _erfc_large)):
        if mask.all():
            out[...] = fn(y)
        elif mask.any():
            out[mask] = fn(y[mask])
    return np.where(x < 0, 2.0 - out, out).astype(out.dtype, copy=False)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF ``Phi(x) = erfc(-x / sqrt(2)) / 2``, accurate in both tails."""
    return 0.5 * erfc(-x * _INV_SQRT_2)


def normal_pdf(x: np.ndarray) -> np.ndarray:
    """Standard normal density ``phi(x)``."""
    x = np.minimum(np.abs(x), 40.0)  # phi(40) underflows anyway; avoids x*x overflow
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)
