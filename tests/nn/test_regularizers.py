"""Regularizers: Keras's penalty and its gradient, lookup, config, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofit.nn import regularizers
from tests.nn.gradcheck import assert_gradients_close, numerical_gradient

W = np.array([[1.0, -2.0], [0.5, 0.0]])


def test_penalties_by_hand() -> None:
    assert regularizers.L1()(W) == pytest.approx(0.01 * 3.5)
    assert regularizers.L2()(W) == pytest.approx(0.01 * 5.25)
    assert regularizers.L1L2(l1=0.1, l2=0.2)(W) == pytest.approx(0.35 + 1.05)
    assert regularizers.L1L2()(W) == 0.0
    assert isinstance(regularizers.L2()(W.astype(np.float32)), float)


def test_gradients_by_hand() -> None:
    reg = regularizers.L1L2(l1=0.1, l2=0.2)
    np.testing.assert_allclose(reg.gradient(W), 0.1 * np.sign(W) + 0.4 * W)
    assert reg.gradient(W.astype(np.float32)).dtype == np.float32
    out = np.ones_like(W)
    reg.add_gradient(W, out)
    np.testing.assert_allclose(out, 1 + 0.1 * np.sign(W) + 0.4 * W)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), l1=st.floats(0, 1), l2=st.floats(0, 1),
       rows=st.integers(1, 4), cols=st.integers(1, 4))
def test_gradient_matches_finite_differences(
    seed: int, l1: float, l2: float, rows: int, cols: int
) -> None:
    X = np.random.default_rng(seed).standard_normal((rows, cols))
    X[np.abs(X) < 1e-3] = 0.1  # |x| is not differentiable at 0
    reg = regularizers.L1L2(l1=l1, l2=l2)
    assert_gradients_close(reg.gradient(X), numerical_gradient(lambda: reg(X), X), "L1L2")


def test_get() -> None:
    assert regularizers.get(None) is None
    assert regularizers.get("l1") == regularizers.L1(0.01)
    assert regularizers.get("l2") == regularizers.L2(0.01)
    assert regularizers.get("l1l2") == regularizers.get("l1_l2") == regularizers.L1L2()
    reg = regularizers.L2(0.5)
    assert regularizers.get(reg) is reg
    with pytest.raises(ValueError, match=r"Unknown regularizer: 'l3'.*Received: 'l3'"):
        regularizers.get("l3")
    with pytest.raises(TypeError, match="Received: regularizer=0.1"):
        regularizers.get(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reg", [regularizers.L1(0.3), regularizers.L2(0.25), regularizers.L1L2(0.1, 0.2)]
)
def test_config_round_trips_through_json(reg: regularizers.Regularizer) -> None:
    spec = json.loads(json.dumps(regularizers.serialize(reg)))
    assert regularizers.get(spec) == reg
    assert regularizers.serialize(None) is None


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1", None])
def test_rejects_bad_factors(bad: object) -> None:
    with pytest.raises(ValueError, match=f"Received: l2={bad!r}"):
        regularizers.L2(bad)  # type: ignore[arg-type]


def test_public_modules_as_a_keras_user_writes_them(tmp_path) -> None:
    """``from aiofit import regularizers, initializers``, as ``from keras import ...``."""
    import aiofit
    from aiofit import initializers, layers
    from aiofit import regularizers as public

    assert public.L1L2 is regularizers.L1L2
    dense = layers.Dense(3, kernel_initializer=initializers.Constant(0.5),
                         kernel_regularizer=public.L2(0.1))
    model = aiofit.Sequential([layers.Input(shape=(2,)), dense], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2)), np.zeros((4, 3))
    # outputs 1.0 everywhere: mse 1.0, penalty 0.1 * (6 kernel entries * 0.25)
    assert model.train_on_batch(x, y)["loss"] == pytest.approx(1.0 + 0.15)
    model.save(tmp_path / "m.aiofit")
    again = aiofit.load_model(tmp_path / "m.aiofit")
    assert again.layers[-1].kernel_regularizer.l2 == pytest.approx(0.1)
