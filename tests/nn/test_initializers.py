"""Initializers: Keras's fan rules, distributions checked on large samples, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aiofit.nn import initializers

TRUNC = 0.87962566103423978
NAMES = [
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
    "lecun_normal", "zeros", "ones", "random_normal", "random_uniform", "truncated_normal",
    "orthogonal", "constant", "variance_scaling",
]


def _draw(name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return initializers.get(name)(shape, np.random.default_rng(seed), np.float64)


def test_compute_fans_follows_keras() -> None:
    assert initializers.compute_fans(()) == (1, 1)
    assert initializers.compute_fans((7,)) == (7, 7)
    assert initializers.compute_fans((784, 512)) == (784, 512)
    assert initializers.compute_fans((3, 3, 16, 32)) == (9 * 16, 9 * 32)


@pytest.mark.parametrize(
    ("name", "limit"),
    [("glorot_uniform", math.sqrt(6 / (300 + 200))), ("he_uniform", math.sqrt(6 / 300)),
     ("lecun_uniform", math.sqrt(3 / 300)), ("random_uniform", 0.05)],
)
def test_uniform_limits_and_variance(name: str, limit: float) -> None:
    w = _draw(name, (300, 200))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit  # 60k draws reach the edge
    # 60k draws: relative standard error of the variance is about 0.5%
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.03)
    assert abs(w.mean()) < 0.02 * limit


@pytest.mark.parametrize(
    ("name", "std"),
    [("he_normal", math.sqrt(2 / 400)), ("glorot_normal", math.sqrt(2 / (400 + 250))),
     ("lecun_normal", math.sqrt(1 / 400)), ("truncated_normal", 0.05 * TRUNC)],
)
def test_truncated_normals_have_target_std_and_bounds(name: str, std: float) -> None:
    # variance scaling rescales so the *truncated* draws have the target std; plain
    # TruncatedNormal(stddev=0.05) truncates a 0.05 normal, so its std is 0.05 * 0.8796
    w = _draw(name, (400, 250))
    assert w.std() == pytest.approx(std, rel=0.02)
    bound = 2 * std / TRUNC  # two standard deviations of the underlying normal
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound


def test_random_normal_is_not_truncated() -> None:
    w = _draw("random_normal", (500, 400))
    assert w.std() == pytest.approx(0.05, rel=0.02)
    assert np.abs(w).max() > 3 * 0.05  # 2e5 draws: some beyond 3 sigma


def test_constant_initializers() -> None:
    assert not _draw("zeros", (3, 2)).any()
    np.testing.assert_array_equal(_draw("ones", (4,)), np.ones(4))
    init = initializers.get({"class_name": "Constant", "config": {"value": 2.5}})
    np.testing.assert_array_equal(init((2, 2), np.random.default_rng(0), np.float32),
                                  np.full((2, 2), 2.5, np.float32))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (2, 3, 5)])
def test_orthogonal(shape: tuple[int, ...]) -> None:
    w = _draw("orthogonal", shape).reshape(-1, shape[-1])
    small = min(w.shape)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    with pytest.raises(ValueError, match=r"Received: shape=\(3,\)"):
        _draw("orthogonal", (3,))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_weights_and_dtype(name: str) -> None:
    init = initializers.get(name)
    a = init((20, 10), np.random.default_rng(42), np.float32)
    b = init((20, 10), np.random.default_rng(42), np.float32)
    assert a.dtype == np.float32
    assert a.shape == (20, 10)
    np.testing.assert_array_equal(a, b)
    c = init((20, 10), np.random.default_rng(42), np.float64)
    np.testing.assert_array_equal(a, c.astype(np.float32))


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "random_normal", "orthogonal"])
def test_randomness_only_from_the_given_rng(name: str) -> None:
    saved = np.random.get_state()
    try:
        np.random.seed(123)
        a, b = _draw(name, (8, 8), seed=1), _draw(name, (8, 8), seed=2)
        # the global generator was not advanced
        assert np.random.random() == np.random.RandomState(123).random()
    finally:
        np.random.set_state(saved)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_serialize_round_trips_through_json(name: str) -> None:
    init = initializers.get(name)
    restored = initializers.get(json.loads(json.dumps(initializers.serialize(init))))
    assert restored == init
    assert type(restored) is type(init)


def test_keras_class_names_and_defaults() -> None:
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)
    assert initializers.get("random_normal").get_config() == {"mean": 0.0, "stddev": 0.05}
    assert initializers.get("random_uniform").get_config() == {"minval": -0.05, "maxval": 0.05}
    vs = initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
    w = vs((100, 400), np.random.default_rng(0), np.float64)
    assert w.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)


def test_bad_identifiers_and_arguments() -> None:
    with pytest.raises(ValueError, match=r"Unknown initializer: 'glorot'.*Received: 'glorot'"):
        initializers.get("glorot")
    with pytest.raises(TypeError, match="Received: initializer=3"):
        initializers.get(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Received: mode='fan'"):
        initializers.VarianceScaling(mode="fan")
    with pytest.raises(ValueError, match="Received: distribution='normal'"):
        initializers.VarianceScaling(distribution="normal")
    with pytest.raises(ValueError, match="Received: scale=0"):
        initializers.VarianceScaling(scale=0)
