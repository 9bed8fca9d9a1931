"""Layers: every gradient by finite differences, Keras semantics, buffers, configs, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiofit
from aiofit.nn import activations, layers
from aiofit.nn.layers import (
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    Input,
)
from tests.nn.gradcheck import check_layer_gradients

F64 = np.dtype(np.float64)
ACTIVATIONS = [
    None, "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softmax", "softplus", "swish",
]
seeds = st.integers(0, 2**32 - 1)
sizes = st.integers(1, 5)


def _away_from_kinks(layer: Dense, X: np.ndarray) -> None:
    # finite differences straddling relu's kink at 0 would be meaningless
    Z = X @ layer.params[0] + (layer.params[1] if layer.use_bias else 0)
    near = np.abs(Z) < 1e-4
    if near.any():
        layer.params[0][...] += 1e-3


# -- Dense ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=sizes, n_in=sizes, n_out=sizes, use_bias=st.booleans())
def test_dense_gradients(
    activation: str | None, seed: int, n: int, n_in: int, n_out: int, use_bias: bool
) -> None:
    rng = np.random.default_rng(seed)
    layer = Dense(n_out, activation=activation, use_bias=use_bias,
                  bias_initializer="random_normal")
    assert layer.build((n_in,), rng, F64) == (n_out,)
    X = rng.standard_normal((n, n_in))
    _away_from_kinks(layer, X)
    check_layer_gradients(layer, X, rng)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=sizes, n_in=sizes, n_out=sizes,
       kreg=st.sampled_from(["l1", "l2", "l1l2", None]),
       breg=st.sampled_from(["l1", "l2", None]))
def test_dense_regularizer_gradients(
    seed: int, n: int, n_in: int, n_out: int, kreg: str | None, breg: str | None
) -> None:
    rng = np.random.default_rng(seed)
    reg = {"l1l2": {"class_name": "L1L2", "config": {"l1": 0.3, "l2": 0.2}}}
    layer = Dense(n_out, activation="tanh", bias_initializer="random_normal",
                  kernel_regularizer=reg.get(kreg or "", kreg), bias_regularizer=breg)
    layer.build((n_in,), rng, F64)
    check_layer_gradients(layer, rng.standard_normal((n, n_in)), rng)


def test_dense_regularization_loss_is_keras_penalty() -> None:
    layer = Dense(2, kernel_regularizer="l2", bias_regularizer="l1",
                  bias_initializer="ones")
    layer.build((3,), np.random.default_rng(0), F64)
    W, b = layer.params
    assert layer.regularization_loss() == pytest.approx(
        0.01 * np.sum(W**2) + 0.01 * np.sum(np.abs(b)), rel=1e-12)
    assert Dense(2).regularization_loss() == 0.0


def test_dense_forward_matches_numpy_and_need_dx_false_skips_dx() -> None:
    rng = np.random.default_rng(1)
    layer = Dense(4, activation="relu", bias_initializer="random_normal")
    layer.build((3,), rng, np.float32)
    X = rng.standard_normal((5, 3)).astype(np.float32)
    W, b = (p.copy() for p in layer.params)
    Y = layer.forward(X, training=True)
    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y, np.maximum(X @ W + b, 0), rtol=1e-6, atol=1e-6)
    dY = rng.standard_normal((5, 4)).astype(np.float32)
    dX = layer.backward(dY, need_dx=True)
    assert dX is not None
    grads = [g.copy() for g in layer.grads]
    layer.forward(X, training=True)
    assert layer.backward(dY, need_dx=False) is None
    for g, expected in zip(layer.grads, grads, strict=True):
        np.testing.assert_array_equal(g, expected)
    dZ = dY * (X @ W + b > 0)
    np.testing.assert_allclose(grads[0], X.T @ dZ, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[1], dZ.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dX, dZ @ W.T, rtol=1e-5, atol=1e-6)


def test_dense_writes_in_place_into_swapped_views() -> None:
    # the model replaces params/grads with views into flat buffers after build
    rng = np.random.default_rng(2)
    layer = Dense(3, activation="sigmoid")
    layer.build((2,), rng, np.float32)
    flat_p = np.concatenate([p.ravel() for p in layer.params])
    flat_g = np.zeros_like(flat_p)
    layer.params = [flat_p[:6].reshape(2, 3), flat_p[6:]]
    layer.grads = [flat_g[:6].reshape(2, 3), flat_g[6:]]
    X = rng.standard_normal((4, 2)).astype(np.float32)
    layer.forward(X, training=True)
    layer.backward(np.ones((4, 3), np.float32))
    assert np.shares_memory(layer.grads[0], flat_g)
    assert np.shares_memory(layer.grads[1], flat_g)
    assert np.abs(flat_g).sum() > 0
    np.testing.assert_array_equal(flat_g[6:], layer.grads[1])


def test_dense_handles_changing_batch_sizes() -> None:
    rng = np.random.default_rng(3)
    layer = Dense(3, activation="gelu")
    layer.build((4,), rng, F64)
    W, b = layer.params
    for n in (5, 2, 5, 1):
        X = rng.standard_normal((n, 4))
        Z = X @ W + b
        gelu = Z * 0.5 * np.vectorize(math.erfc)(-Z / math.sqrt(2))
        np.testing.assert_allclose(layer.forward(X, True), gelu, rtol=1e-12)
        assert layer.backward(np.ones((n, 3))).shape == (n, 4)  # type: ignore[union-attr]


def test_dense_rejects_bad_units_and_rank() -> None:
    for units in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match=f"Received: units={units!r}"):
            Dense(units)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"rank 2.*Received: input_shape=\(None, 3, 4\)"):
        Dense(2).build((3, 4), np.random.default_rng(0), np.float32)
    with pytest.raises(ValueError, match="Unknown activation: 'rleu'"):
        Dense(2, activation="rleu")
    with pytest.raises(ValueError, match="Unknown initializer"):
        Dense(2, kernel_initializer="glorot")


def test_dense_uses_glorot_uniform_and_zero_bias_by_default() -> None:
    layer = Dense(300)
    layer.build((500,), np.random.default_rng(4), np.float32)
    W, b = layer.params
    assert W.shape == (500, 300)
    assert b.shape == (300,)
    assert W.dtype == np.float32
    limit = np.sqrt(6 / 800)
    assert np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.99 * limit
    assert not b.any()


# -- Activation, Flatten, Input ------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=sizes, d=sizes)
def test_activation_layer_gradients(activation: str | None, seed: int, n: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    layer = Activation(activation)
    layer.build((d,), rng, F64)
    X = rng.standard_normal((n, d))
    X[np.abs(X) < 1e-3] += 1e-2
    before = X.copy()
    check_layer_gradients(layer, X, rng)
    layer.forward(X, True)
    np.testing.assert_array_equal(X, before)  # the input is never overwritten


@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=sizes, shape=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_flatten_gradients_and_shape(seed: int, n: int, shape: list[int]) -> None:
    rng = np.random.default_rng(seed)
    layer = Flatten()
    assert layer.build(tuple(shape), rng, F64) == (int(np.prod(shape)),)
    X = rng.standard_normal((n, *shape))
    np.testing.assert_array_equal(layer.forward(X, True), X.reshape(n, -1))
    check_layer_gradients(layer, X, rng)


def test_input_is_identity_and_validates_shape() -> None:
    layer = Input(shape=(3,))
    assert layer.shape == (3,)
    assert Input(shape=7).shape == (7,)
    assert layer.build((3,), np.random.default_rng(0), F64) == (3,)
    X = np.ones((2, 3))
    assert layer.forward(X, True) is X
    assert layer.backward(X) is X
    assert layer.backward(X, need_dx=False) is None
    for bad in ((0,), (2.5,), "3", None, (3, -1)):
        with pytest.raises(ValueError, match="Received: shape="):
            Input(shape=bad)
    with pytest.raises(ValueError, match=r"Received: input_shape=\(4,\)"):
        layer.build((4,), np.random.default_rng(0), F64)


# -- Dropout -----------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=sizes, d=sizes, rate=st.floats(0.0, 0.9))
def test_dropout_gradients_with_fixed_mask(seed: int, n: int, d: int, rate: float) -> None:
    rng = np.random.default_rng(seed)
    layer = Dropout(rate)
    layer.build((d,), rng, F64)
    assert layer.rng is rng
    saved = rng.bit_generator.state

    def rewind() -> None:
        layer.rng.bit_generator.state = saved  # type: ignore[union-attr]

    check_layer_gradients(layer, np.random.default_rng(seed + 1).standard_normal((n, d)),
                          np.random.default_rng(seed + 2), before_forward=rewind)


def test_dropout_statistics_and_inference_identity() -> None:
    layer = Dropout(0.3)
    layer.build((1000,), np.random.default_rng(5), np.float32)
    X = np.ones((100, 1000), np.float32)
    Y = layer.forward(X, training=True)
    kept = Y != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 1e5 Bernoulli draws: sd 0.0015
    np.testing.assert_allclose(Y[kept], 1 / 0.7, rtol=1e-6)
    assert Y.dtype == np.float32
    dX = layer.backward(np.full_like(X, 2.0))
    assert dX is not None
    np.testing.assert_allclose(dX, np.where(kept, 2 / 0.7, 0), rtol=1e-6)
    assert layer.forward(X, training=False) is X
    assert layer.backward(X) is X


def test_dropout_is_reproducible_from_the_build_rng_or_its_seed() -> None:
    def masks(rng_seed: int, layer_seed: int | None) -> np.ndarray:
        layer = Dropout(0.5, seed=layer_seed)
        layer.build((50,), np.random.default_rng(rng_seed), F64)
        return np.stack([layer.forward(np.ones((4, 50)), True).copy() for _ in range(2)])

    np.testing.assert_array_equal(masks(1, None), masks(1, None))
    assert not np.array_equal(masks(1, None), masks(2, None))
    np.testing.assert_array_equal(masks(1, 9), masks(2, 9))  # own seed wins
    first = masks(1, None)
    assert not np.array_equal(first[0], first[1])  # a new mask each step


def test_dropout_rejects_bad_rate() -> None:
    for rate in (1.5, 1.0, -0.1, "0.5", float("nan")):
        with pytest.raises(ValueError, match=f"Received: rate={rate!r}"):
            Dropout(rate)  # type: ignore[arg-type]
    ones = np.ones((2, 3))
    assert Dropout(0).forward(ones, training=True) is ones  # rate 0 needs no generator


# -- BatchNormalization ------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=st.integers(2, 6), d=sizes, center=st.booleans(), scale=st.booleans(),
       training=st.booleans())
def test_batchnorm_gradients(
    seed: int, n: int, d: int, center: bool, scale: bool, training: bool
) -> None:
    rng = np.random.default_rng(seed)
    layer = BatchNormalization(center=center, scale=scale)
    layer.build((d,), rng, F64)
    for p in layer.params:
        p[...] = rng.standard_normal(p.shape)
    layer.state[0][...] = rng.standard_normal(d)
    layer.state[1][...] = rng.uniform(0.5, 2.0, d)
    check_layer_gradients(layer, 2.0 * rng.standard_normal((n, d)) + 1.0, rng,
                          training=training)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, axis=st.sampled_from([1, 2, -1]))
def test_batchnorm_gradients_on_rank_3_inputs(seed: int, axis: int) -> None:
    rng = np.random.default_rng(seed)
    layer = BatchNormalization(axis=axis)
    layer.build((3, 4), rng, F64)
    assert layer.params[0].shape == ((3,) if axis == 1 else (4,))
    for p in layer.params:
        p[...] = rng.standard_normal(p.shape)
    check_layer_gradients(layer, rng.standard_normal((2, 3, 4)), rng)


def test_batchnorm_training_uses_batch_stats_and_updates_moving_stats() -> None:
    layer = BatchNormalization(momentum=0.9, epsilon=1e-3)
    layer.build((2,), np.random.default_rng(0), F64)
    assert layer.weight_names == ("gamma", "beta", "moving_mean", "moving_variance")
    X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
    Y = layer.forward(X, training=True)
    mean, var = np.array([3.0, 12.0]), np.array([8 / 3, 8.0])  # biased variance
    np.testing.assert_allclose(Y, (X - mean) / np.sqrt(var + 1e-3), rtol=1e-14)
    np.testing.assert_allclose(layer.state[0], 0.1 * mean, rtol=1e-14)
    np.testing.assert_allclose(layer.state[1], 0.9 + 0.1 * var, rtol=1e-14)


def test_batchnorm_inference_uses_moving_stats() -> None:
    layer = BatchNormalization(epsilon=0.01)
    layer.build((2,), np.random.default_rng(0), F64)
    gamma, beta, mm, mv = layer.weights
    gamma[...], beta[...], mm[...], mv[...] = [2.0, 0.5], [1.0, -1.0], [1.0, 2.0], [3.99, 0.24]
    Y = layer.forward(np.array([[3.0, 2.0], [1.0, 3.0]]), training=False)
    # (x - mm) / sqrt(mv + eps) * gamma + beta, with sqrt(4.0) = 2 and sqrt(0.25) = 0.5
    np.testing.assert_allclose(Y, [[3.0, -1.0], [1.0, 0.0]], rtol=1e-14)
    np.testing.assert_array_equal(mm, [1.0, 2.0])  # inference leaves the stats alone


def test_batchnorm_weights_follow_center_and_scale() -> None:
    layer = BatchNormalization(scale=False)
    layer.build((3,), np.random.default_rng(0), np.float32)
    assert len(layer.params) == 1
    assert len(layer.state) == 2
    assert layer.weight_names == ("beta", "moving_mean", "moving_variance")
    X = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    for training in (True, False):
        assert layer.forward(X, training).dtype == np.float32
        assert layer.backward(X).dtype == np.float32  # type: ignore[union-attr]
    assert all(w.dtype == np.float32 for w in layer.weights)
    with pytest.raises(ValueError, match="Received: axis=0"):
        BatchNormalization(axis=0).build((3,), np.random.default_rng(0), F64)
    with pytest.raises(ValueError, match="Received: axis=2"):
        BatchNormalization(axis=2).build((3,), np.random.default_rng(0), F64)


# -- serialization -----------------------------------------------------------------------

ALL_LAYERS = [
    lambda: Input(shape=(6,)),
    lambda: Dense(4, activation="leaky_relu", use_bias=True, kernel_initializer="he_normal",
                  kernel_regularizer="l1l2", bias_regularizer={"class_name": "L2",
                                                               "config": {"l2": 0.5}}),
    lambda: Dense(3, activation=None, use_bias=False, name="head"),
    lambda: Activation("softmax"),
    lambda: Dropout(0.25, seed=3),
    lambda: Flatten(),
    lambda: BatchNormalization(momentum=0.5, epsilon=0.1, center=False),
]


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_serialize_round_trips_through_json(make: object) -> None:
    layer = make()  # type: ignore[operator]
    spec = json.loads(json.dumps(layers.serialize(layer)))
    clone = layers.deserialize(spec)
    assert type(clone) is type(layer)
    assert clone.name == layer.name
    assert clone.get_config() == layer.get_config()
    shape = (6,)
    layer.build(shape, np.random.default_rng(0), F64)
    clone.build(shape, np.random.default_rng(0), F64)
    for a, b in zip(layer.weights, clone.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    X = np.random.default_rng(1).standard_normal((3, 6))
    np.testing.assert_array_equal(layer.forward(X, True), clone.forward(X, True))
    assert layer.regularization_loss() == clone.regularization_loss()
    if isinstance(layer, Dense) and isinstance(clone, Dense):
        assert clone.bias_regularizer == layer.bias_regularizer
        assert clone.kernel_regularizer == layer.kernel_regularizer
        assert clone.activation == layer.activation


def test_get_and_deserialize_errors() -> None:
    assert layers.get("Dense") is Dense
    with pytest.raises(ValueError, match="Unknown layer: 'Dense2'.*Received: 'Dense2'"):
        layers.get("Dense2")
    with pytest.raises(ValueError, match="Received:"):
        layers.deserialize({"config": {}})


def test_register_makes_custom_layers_loadable() -> None:
    @layers.register
    class Doubler(layers.Layer):
        def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
            return 2 * X

    clone = layers.deserialize(layers.serialize(Doubler(name="dbl")))
    assert isinstance(clone, Doubler)
    assert clone.name == "dbl"
    with pytest.raises(TypeError, match="Received"):
        layers.register(int)  # type: ignore[type-var]


# ------------------------------------------------------------ dY reuse in backward


def _mlp(activation: object, seed: int = 0) -> aiofit.Sequential:
    model = aiofit.Sequential(
        [layers.Input(shape=(6,)), layers.Dense(8, activation=activation),
         layers.Dense(3, activation="softmax")], seed=seed)  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "elu", "swish", "linear"])
def test_a_models_dense_layers_reuse_dy_with_the_same_result(activation: str) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, 16)
    reusing, fresh = _mlp(activation), _mlp(activation)
    reusing.build((None, 6))
    fresh.build((None, 6))
    assert all(layer.scratch_dy for layer in reusing.layers)
    for layer in fresh.layers:
        layer.scratch_dy = False
    for _ in range(3):
        assert reusing.train_on_batch(x, y) == fresh.train_on_batch(x, y)
    for a, b in zip(reusing.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_backward_leaves_dy_alone_unless_told_it_is_scratch() -> None:
    layer = layers.Dense(4, activation="relu")
    layer.build((3,), np.random.default_rng(0), np.float32)
    layer.forward(np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32), True)
    dy = np.ones((5, 4), np.float32)
    layer.backward(dy)
    np.testing.assert_array_equal(dy, 1.0)  # a layer driven by hand: dY is the caller's


def test_a_custom_activation_is_not_given_dy_as_its_output() -> None:
    class Doubling(activations.Activation):
        name = "doubling"  # backward reads dA after writing out: not in-place safe

        def forward(self, Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            return np.multiply(Z, 2.0, out=out)

        def backward(self, Z: np.ndarray, A: np.ndarray, dA: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
            out = np.empty_like(dA) if out is None else out
            out[...] = 0.0
            out += 2.0 * dA  # all zeros if out were dA
            return out

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 3, 8)
    model = _mlp(Doubling())
    model.build((None, 6))
    _, grads = model.compute_gradients(x, y)
    linear = _mlp("linear")
    linear.build((None, 6))
    linear.set_weights([w * 2.0 if i < 2 else w for i, w in enumerate(model.get_weights())])
    # doubling(X @ W + b) = X @ 2W + 2b: the same outputs, so the gradients are halved
    _, linear_grads = linear.compute_gradients(x, y)
    np.testing.assert_allclose(grads[:6 * 8 + 8], 2.0 * linear_grads[:6 * 8 + 8], rtol=1e-5)
