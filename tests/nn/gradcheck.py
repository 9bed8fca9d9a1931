"""Central finite differences in float64, shared by every gradient test.

Import as ``from tests.nn.gradcheck import numerical_gradient, check_layer_gradients``.
Build layers with ``dtype=np.float64``: with ``eps=1e-6`` central differences are
then accurate to about 1e-9, so a wrong gradient cannot hide under the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from aiofit.nn.layers.base import Layer

__all__ = ["assert_gradients_close", "check_layer_gradients", "numerical_gradient"]


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``df/dx`` by central differences, perturbing ``x`` in place (restored afterwards).

    ``f`` takes no argument: it must read ``x`` (or an array sharing its memory).
    """
    if x.dtype != np.float64:
        raise TypeError(f"finite differences need float64 arrays; received {x.dtype}")
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    grad = np.empty(flat.size)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = f()
        flat[i] = old - eps
        f_minus = f()
        flat[i] = old
        grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad.reshape(x.shape)


def assert_gradients_close(
    analytic: np.ndarray, numeric: np.ndarray, what: str, rtol: float = 1e-5, atol: float = 1e-7
) -> None:
    """Fail with the worst entry named when the two gradients differ."""
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=what)


def check_layer_gradients(
    layer: Layer,
    X: np.ndarray,
    rng: np.random.Generator,
    *,
    training: bool = True,
    before_forward: Callable[[], None] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> None:
    """Check ``dX`` and every param gradient of a built float64 layer.

    The scalar checked is ``L = sum(G * layer(X)) + layer.regularization_loss()``
    for a random ``G``, so ``backward(G)`` plus ``add_regularization_grads()`` must
    give ``dL/dX`` and ``dL/dparams``. ``before_forward`` runs before every forward
    (e.g. to rewind a Dropout generator so the mask stays fixed).
    """

    def forward() -> np.ndarray:
        if before_forward is not None:
            before_forward()
        return layer.forward(X, training)

    def loss() -> float:
        return float(np.sum(G * forward())) + layer.regularization_loss()

    G = rng.standard_normal(forward().shape)
    forward()
    dX = np.array(layer.backward(G.copy(), need_dx=True))
    layer.add_regularization_grads()
    grads = [np.array(g) for g in layer.grads]
    assert_gradients_close(dX, numerical_gradient(loss, X), "dX", rtol, atol)
    for i, param in enumerate(layer.params):
        numeric = numerical_gradient(loss, param)
        assert_gradients_close(grads[i], numeric, f"grad of params[{i}]", rtol, atol)
