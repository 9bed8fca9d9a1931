"""Activations: gradients by finite differences, closed forms, stability, lookup."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofit.nn import activations
from tests.nn.gradcheck import assert_gradients_close, numerical_gradient

NAMES = [
    "linear", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softmax",
    "softplus", "swish",
]
VARIANTS = [activations.get(n) for n in NAMES] + [
    activations.GELU(approximate=True),
    activations.LeakyReLU(negative_slope=-0.5),
    activations.ELU(alpha=0.5),
]
IDS = [repr(a) for a in VARIANTS]


def _inputs(seed: int, rows: int, cols: int) -> np.ndarray:
    Z = 3.0 * np.random.default_rng(seed).standard_normal((rows, cols))
    # keep clear of the kinks at 0 (relu, leaky_relu, elu), where f is not differentiable
    Z[np.abs(Z) < 1e-3] += 1e-2
    return Z


@pytest.mark.parametrize("act", VARIANTS, ids=IDS)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 4), cols=st.integers(1, 6))
def test_backward_matches_finite_differences(
    act: activations.Activation, seed: int, rows: int, cols: int
) -> None:
    Z = _inputs(seed, rows, cols)
    G = np.random.default_rng(seed + 1).standard_normal(Z.shape)
    A = act.forward(Z.copy())
    analytic = act.backward(Z, A, G)
    numeric = numerical_gradient(lambda: float(np.sum(G * act.forward(Z))), Z)
    assert_gradients_close(analytic, numeric, f"{act!r} backward")


@pytest.mark.parametrize("act", [a for a in VARIANTS if a.inplace_ok], ids=repr)
def test_inplace_forward_and_backward_from_output_only(act: activations.Activation) -> None:
    Z = _inputs(7, 5, 6)
    G = np.random.default_rng(8).standard_normal(Z.shape)
    A_ref = act.forward(Z.copy())
    expected = act.backward(Z, A_ref, G)
    buf = Z.copy()
    A = act.forward(buf, out=buf)
    assert A is buf
    np.testing.assert_allclose(A, A_ref, rtol=1e-15, atol=0)
    dZ = np.empty_like(Z)
    assert act.backward(A, A, G, out=dZ) is dZ  # Z already overwritten: only A is read
    np.testing.assert_allclose(dZ, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("act", VARIANTS, ids=IDS)
def test_float32_stays_float32(act: activations.Activation) -> None:
    Z = _inputs(3, 4, 5).astype(np.float32)
    A = act.forward(Z)
    assert A.dtype == np.float32
    assert act.backward(Z, A, np.ones_like(Z)).dtype == np.float32


def test_closed_forms() -> None:
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(activations.get("relu")(x), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(activations.get("leaky_relu")(x), [-0.4, -0.1, 0, 0.5, 2])
    np.testing.assert_allclose(
        activations.get("elu")(x), [math.exp(-2) - 1, math.exp(-0.5) - 1, 0, 0.5, 2]
    )
    np.testing.assert_allclose(activations.get("sigmoid")(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(activations.get("tanh")(x), np.tanh(x))
    np.testing.assert_allclose(activations.get("softplus")(x), np.log1p(np.exp(x)), rtol=1e-15)
    np.testing.assert_allclose(activations.get("swish")(x), x / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_array_equal(activations.get(None)(x), x)


def test_gelu_matches_keras_and_erf() -> None:
    gelu = activations.get("gelu")
    assert gelu(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, abs=1e-15)
    xs = np.linspace(-10, 10, 2001)
    exact = np.array([x * 0.5 * math.erfc(-x / math.sqrt(2)) for x in xs])
    # the tails are ill-conditioned (relative error ~ x^2 * eps), hence 1e-13, not 1e-16;
    # the contract asks for ~1e-7
    np.testing.assert_allclose(gelu(xs), exact, rtol=1e-13, atol=0)
    approx = activations.GELU(approximate=True)(np.array([1.0]))[0]
    tanh_form = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))
    assert approx == pytest.approx(tanh_form, rel=1e-15)


def test_erfc_against_math_erfc() -> None:
    xs = np.concatenate([np.linspace(-6, 6, 4801), np.linspace(6, 26.5, 801), [0.46875, 4.0]])
    expected = np.array([math.erfc(x) for x in xs])
    np.testing.assert_allclose(activations.erfc(xs), expected, rtol=2e-15, atol=0)
    assert activations.erfc(np.array([1e30, -1e30], np.float32)).tolist() == [0.0, 2.0]


def test_softmax_rows_sum_to_one_and_are_stable() -> None:
    Z = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0], [-1e4, -1e4, -1e4]])
    A = activations.get("softmax")(Z)
    assert np.isfinite(A).all()
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(A[0], [1.0, 0.0, 0.0])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(A[1], e / e.sum(), rtol=1e-15)
    np.testing.assert_allclose(A[2], [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_allclose(activations.get("softmax")(Z[1:2] + 500.0), A[1:2], rtol=1e-14)


def test_extreme_inputs_stay_finite_without_warnings() -> None:
    x = np.array([-1000.0, 1000.0])
    x32 = x.astype(np.float32)
    for name in NAMES:
        act = activations.get(name)
        for z in (x, x32):
            a = act.forward(z)
            assert np.isfinite(a).all(), name
            assert np.isfinite(act.backward(z, a, np.ones_like(z))).all(), name
    assert activations.get("softplus")(x).tolist() == [0.0, 1000.0]
    assert activations.get("sigmoid")(x).tolist() == [0.0, 1.0]
    gelu = activations.get("gelu")(x)
    assert gelu[0] == pytest.approx(0.0, abs=1e-300)
    assert gelu[1] == 1000.0


def test_get_names_aliases_and_instances() -> None:
    for name in NAMES:
        assert activations.get(name).name == name
    assert isinstance(activations.get("silu"), activations.Swish)
    assert isinstance(activations.get(None), activations.Linear)
    leaky = activations.LeakyReLU(0.1)
    assert activations.get(leaky) is leaky
    assert activations.get("leaky_relu").get_config() == {"negative_slope": 0.2}


def test_get_rejects_unknown_and_bad_types() -> None:
    with pytest.raises(ValueError, match=r"Unknown activation: 'relux'\. Expected one of \[.*"
                       r"relu.*\]\. Received: 'relux'"):
        activations.get("relux")
    with pytest.raises(TypeError, match="Received: activation=3"):
        activations.get(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("act", VARIANTS, ids=IDS)
def test_serialize_round_trips_through_json(act: activations.Activation) -> None:
    restored = activations.get(json.loads(json.dumps(activations.serialize(act))))
    assert restored == act
    assert restored.get_config() == act.get_config()


def test_serialize_uses_bare_name_for_defaults() -> None:
    assert activations.serialize(activations.get("relu")) == "relu"
    assert activations.serialize(activations.ELU(alpha=0.5)) == {
        "class_name": "elu", "config": {"alpha": 0.5}
    }
