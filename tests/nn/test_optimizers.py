"""Optimizers against Keras 3's formulas, written out independently per variable."""

from __future__ import annotations

import json
import math
import tracemalloc
from typing import Any

import numpy as np
import pytest

from aiofit.nn import optimizers
from aiofit.nn.optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

SIZES = [6, 3, 4]  # e.g. a (2, 3) kernel, a (3,) bias, a (4,) vector
SEGMENTS = [(0, 6), (6, 9), (9, 13)]
GRAD_SCALES = [3.0, 0.1, 1.0]  # with clipnorm=1 the first and last weights clip, not the middle
LRS = [0.1, 0.05, 0.2]  # set between steps


# ------------------------------------------------------- reference (float64)


def _clip(gs: list[np.ndarray], cfg: dict[str, Any]) -> list[np.ndarray]:
    if cfg.get("clipnorm"):
        c = cfg["clipnorm"]
        return [g * c / max(math.sqrt(float(np.sum(g * g))), c) for g in gs]
    if cfg.get("global_clipnorm"):
        c = cfg["global_clipnorm"]
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in gs))
        return [g * c * min(1 / norm, 1 / c) for g in gs]
    if cfg.get("clipvalue"):
        v = cfg["clipvalue"]
        return [np.clip(g, -v, v) for g in gs]
    return gs


def _ref_update(
    kind: str, cfg: dict[str, Any], w: np.ndarray, g: np.ndarray, s: dict[str, np.ndarray],
    t: int, lr: float,
) -> np.ndarray:
    """One Keras 3 ``update_step`` for one variable; ``t`` is the 1-based step."""
    if kind == "sgd":
        mom = cfg.get("momentum", 0.0)
        if not mom:
            return w - lr * g
        s["m"] = mom * s["m"] - lr * g
        return w + (mom * s["m"] - lr * g if cfg.get("nesterov") else s["m"])
    if kind in ("adam", "adamw"):
        b1, b2, eps = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.999), cfg.get("epsilon", 1e-7)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        s["m"] = s["m"] + (g - s["m"]) * (1 - b1)
        s["v"] = s["v"] + (g * g - s["v"]) * (1 - b2)
        v = s["v"]
        if cfg.get("amsgrad"):
            s["vhat"] = np.maximum(s["vhat"], s["v"])
            v = s["vhat"]
        return w - alpha * s["m"] / (np.sqrt(v) + eps)
    if kind == "rmsprop":
        rho, mom, eps = cfg.get("rho", 0.9), cfg.get("momentum", 0.0), cfg.get("epsilon", 1e-7)
        s["v"] = rho * s["v"] + (1 - rho) * g * g
        if cfg.get("centered"):
            s["a"] = rho * s["a"] + (1 - rho) * g
            denominator = s["v"] - s["a"] ** 2 + eps
        else:
            denominator = s["v"] + eps
        increment = lr * g / np.sqrt(denominator)
        if mom:
            s["mo"] = mom * s["mo"] + increment
            return w - s["mo"]
        return w - increment
    assert kind == "adagrad"
    s["acc"] = s["acc"] + g * g
    return w - lr * g / np.sqrt(s["acc"] + cfg.get("epsilon", 1e-7))


def reference_run(
    kind: str, cfg: dict[str, Any], ws: list[np.ndarray], grad_steps: list[list[np.ndarray]],
    lrs: list[float],
) -> list[np.ndarray]:
    init = cfg.get("initial_accumulator_value", 0.1) if kind == "adagrad" else 0.0
    slots = [
        {k: np.full_like(w, init) for k in ("m", "v", "vhat", "a", "mo", "acc")} for w in ws
    ]
    wd = cfg.get("weight_decay", 0.004 if kind == "adamw" else None)
    for t, (gs, lr) in enumerate(zip(grad_steps, lrs, strict=True), start=1):
        gs = _clip(gs, cfg)
        if wd is not None:
            ws = [w - w * wd * lr for w in ws]
        ws = [
            _ref_update(kind, cfg, w, g, s, t, lr)
            for w, g, s in zip(ws, gs, slots, strict=True)
        ]
    return ws


# ---------------------------------------------------------------- fixtures


CASES: list[tuple[str, type[Optimizer], dict[str, Any]]] = [
    ("sgd", SGD, {}),
    ("sgd", SGD, {"momentum": 0.9}),
    ("sgd", SGD, {"momentum": 0.9, "nesterov": True}),
    ("sgd", SGD, {"clipnorm": 1.0}),
    ("sgd", SGD, {"clipvalue": 0.5}),
    ("sgd", SGD, {"global_clipnorm": 1.5}),
    ("sgd", SGD, {"momentum": 0.5, "weight_decay": 0.1}),
    ("adam", Adam, {}),
    ("adam", Adam, {"amsgrad": True, "beta_1": 0.8, "beta_2": 0.9}),
    ("adam", Adam, {"clipnorm": 1.0, "epsilon": 1e-3}),
    ("adam", Adam, {"global_clipnorm": 1.0}),
    ("adam", Adam, {"weight_decay": 0.05, "clipvalue": 0.5}),
    ("adamw", AdamW, {}),
    ("adamw", AdamW, {"weight_decay": 0.1, "amsgrad": True}),
    ("rmsprop", RMSprop, {}),
    ("rmsprop", RMSprop, {"momentum": 0.9}),
    ("rmsprop", RMSprop, {"centered": True}),
    ("rmsprop", RMSprop, {"centered": True, "momentum": 0.5, "rho": 0.8}),
    ("rmsprop", RMSprop, {"clipnorm": 1.0}),
    ("adagrad", Adagrad, {}),
    ("adagrad", Adagrad, {"initial_accumulator_value": 0.5, "global_clipnorm": 1.0}),
    ("adagrad", Adagrad, {"weight_decay": 0.1, "clipvalue": 0.3}),
]
CASE_IDS = [f"{kind}-{'-'.join(f'{k}={v}' for k, v in cfg.items()) or 'default'}"
            for kind, _, cfg in CASES]


def _problem(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = rng.normal(size=sum(SIZES))
    grad_steps = []
    for _ in LRS:
        # amsgrad needs gradients that shrink sometimes so v_hat differs from v
        g = rng.normal(size=sum(SIZES)) * rng.uniform(0.2, 1.5)
        for (start, stop), scale in zip(SEGMENTS, GRAD_SCALES, strict=True):
            g[start:stop] *= scale
        grad_steps.append(g)
    return params, grad_steps


def _split(flat: np.ndarray) -> list[np.ndarray]:
    return [flat[start:stop].astype(np.float64) for start, stop in SEGMENTS]


def _run(
    cls: type[Optimizer], cfg: dict[str, Any], params: np.ndarray, grad_steps: list[np.ndarray]
) -> tuple[Optimizer, np.ndarray]:
    opt = cls(learning_rate=0.3, **cfg)
    opt.build(params, SEGMENTS)
    for g, lr in zip(grad_steps, LRS, strict=True):
        opt.learning_rate = lr
        opt.apply(params, g.astype(params.dtype))  # a fresh copy: apply may clobber grads
    return opt, params


# ------------------------------------------------------------- update rules


@pytest.mark.parametrize(("kind", "cls", "cfg"), CASES, ids=CASE_IDS)
def test_three_steps_match_keras_formulas_float64(
    kind: str, cls: type[Optimizer], cfg: dict[str, Any]
) -> None:
    params, grad_steps = _problem()
    expected = reference_run(kind, cfg, _split(params), [_split(g) for g in grad_steps], LRS)
    opt, out = _run(cls, cfg, params.copy(), grad_steps)
    np.testing.assert_allclose(out, np.concatenate(expected), rtol=1e-12, atol=1e-14)
    assert opt.iterations == 3
    assert not np.allclose(out, params)  # the steps did move the weights


@pytest.mark.parametrize(("kind", "cls", "cfg"), CASES, ids=CASE_IDS)
def test_float32_stays_float32(kind: str, cls: type[Optimizer], cfg: dict[str, Any]) -> None:
    params, grad_steps = _problem(seed=1)
    p32 = params.astype(np.float32)
    expected = reference_run(
        kind, cfg, _split(p32), [_split(g.astype(np.float32)) for g in grad_steps], LRS
    )
    opt, out = _run(cls, cfg, p32, grad_steps)
    assert out.dtype == np.float32
    for name, value in opt.get_state().items():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32, name
    np.testing.assert_allclose(out, np.concatenate(expected), rtol=2e-5, atol=2e-6)


def test_clipnorm_is_per_weight_and_global_clipnorm_is_over_all() -> None:
    grads = np.array([3.0, 4.0, 0.3, 0.4])  # norms 5 and 0.5; global sqrt(25.25)
    p = np.zeros(4)
    opt = SGD(learning_rate=1.0, clipnorm=1.0)
    opt.build(p, [(0, 2), (2, 4)])
    opt.apply(p, grads.copy())
    np.testing.assert_allclose(p, [-0.6, -0.8, -0.3, -0.4])
    p = np.zeros(4)
    opt = SGD(learning_rate=1.0, global_clipnorm=1.0)
    opt.build(p, [(0, 2), (2, 4)])
    opt.apply(p, grads.copy())
    np.testing.assert_allclose(p, -grads / math.sqrt(25.25))


def test_weight_decay_applies_before_the_update() -> None:
    # w = 2, g = 1, lr = 0.1, wd = 0.5: w -> 2 - 2 * 0.5 * 0.1 = 1.9 -> 1.9 - 0.1 = 1.8
    p = np.array([2.0])
    SGD(learning_rate=0.1, weight_decay=0.5).apply(p, np.array([1.0]))
    assert p[0] == pytest.approx(1.8)


def test_adam_first_step_closed_form() -> None:
    # step 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1, so
    # w -= lr * g / (|g| + eps / sqrt(0.001))
    p, g = np.array([1.0, -1.0]), np.array([0.5, -2.0])
    Adam(learning_rate=0.01).apply(p, g.copy())
    expected = np.array([1.0, -1.0]) - 0.01 * g / (np.abs(g) + 1e-7 / math.sqrt(0.001))
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_apply_without_build_treats_the_buffer_as_one_weight() -> None:
    p = np.array([3.0, 4.0])
    opt = SGD(learning_rate=1.0, clipnorm=1.0)
    opt.apply(p, np.array([3.0, 4.0]))
    np.testing.assert_allclose(p, [2.4, 3.2])
    assert opt.built


@pytest.mark.parametrize(("kind", "cls", "cfg"), CASES, ids=CASE_IDS)
def test_a_step_allocates_nothing_large(
    kind: str, cls: type[Optimizer], cfg: dict[str, Any]
) -> None:
    n = 250_000  # 1 MB of float32
    params = np.ones(n, dtype=np.float32)
    grads = np.full(n, 0.5, dtype=np.float32)
    opt = cls(**cfg)
    opt.build(params, [(0, n // 2), (n // 2, n)])
    opt.apply(params, grads.copy())  # warm up
    tracemalloc.start()
    try:
        opt.apply(params, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < params.nbytes // 10


# ------------------------------------------------------------ state/config


@pytest.mark.parametrize(("kind", "cls", "cfg"), CASES, ids=CASE_IDS)
def test_get_state_set_state_resumes_bit_identically(
    kind: str, cls: type[Optimizer], cfg: dict[str, Any]
) -> None:
    params, grad_steps = _problem(seed=2)
    params = params.astype(np.float32)
    _, straight = _run(cls, cfg, params.copy(), grad_steps)

    first = cls(**cfg)
    resumed = params.copy()
    first.build(resumed, SEGMENTS)
    first.learning_rate = LRS[0]
    first.apply(resumed, grad_steps[0].astype(np.float32))
    state = first.get_state()
    first.apply(resumed.copy(), grad_steps[1].astype(np.float32))  # state is a snapshot
    second = cls.from_config(json.loads(json.dumps(first.get_config())))
    second.set_state(state)  # before build: held until build
    second.build(resumed, SEGMENTS)
    assert second.iterations == 1
    for g, lr in zip(grad_steps[1:], LRS[1:], strict=True):
        second.learning_rate = lr
        second.apply(resumed, g.astype(np.float32))
    np.testing.assert_array_equal(resumed, straight)


def test_state_carries_the_learning_rate_and_iterations() -> None:
    opt = RMSprop(momentum=0.5)
    opt.build(np.zeros(3, np.float32), [(0, 3)])
    opt.apply(np.zeros(3, np.float32), np.ones(3, np.float32))
    opt.learning_rate = 0.123  # e.g. set by ReduceLROnPlateau
    restored = RMSprop(momentum=0.5)
    restored.build(np.zeros(3, np.float32), [(0, 3)])
    restored.set_state(opt.get_state())
    assert restored.learning_rate == 0.123
    assert restored.iterations == 1
    assert sorted(restored.get_state()) == ["iterations", "learning_rate", "momentum", "velocity"]


def test_set_state_rejects_wrong_shapes_and_missing_keys() -> None:
    opt = Adam()
    opt.build(np.zeros(4, np.float32), [(0, 4)])
    state = opt.get_state()
    with pytest.raises(ValueError, match="missing.*velocity_sum"):
        opt.set_state({k: v for k, v in state.items() if k != "velocity_sum"})
    with pytest.raises(ValueError, match=r"received shape \(3,\)"):
        opt.set_state({**state, "momentum_sum": np.zeros(3, np.float32)})


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_keeps_kerass_moments_as_weighted_sums(amsgrad: bool) -> None:
    # momentum_sum = m / (1 - beta_1), velocity_sum = v / (1 - beta_2), with Keras's m, v.
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=5) for _ in range(4)]
    opt = Adam(beta_1=0.8, beta_2=0.95, amsgrad=amsgrad)
    params = np.zeros(5)
    opt.build(params, [(0, 5)])
    m, v, v_max = np.zeros(5), np.zeros(5), np.zeros(5)
    for g in grads:
        opt.apply(params, g.copy())
        m += (g - m) * 0.2
        v += (g**2 - v) * 0.05
        v_max = np.maximum(v_max, v)
    state = opt.get_state()
    np.testing.assert_allclose(state["momentum_sum"] * 0.2, m, rtol=1e-13)
    np.testing.assert_allclose(state["velocity_sum"] * 0.05, v, rtol=1e-13)
    if amsgrad:
        np.testing.assert_allclose(state["velocity_sum_max"] * 0.05, v_max, rtol=1e-13)
    else:
        assert "velocity_sum_max" not in state


@pytest.mark.parametrize(("kind", "cls", "cfg"), CASES, ids=CASE_IDS)
def test_config_round_trips_through_json(
    kind: str, cls: type[Optimizer], cfg: dict[str, Any]
) -> None:
    opt = cls(learning_rate=0.02, **cfg)
    config = json.loads(json.dumps(opt.get_config()))
    assert config["learning_rate"] == 0.02
    for key, value in cfg.items():
        assert config[key] == value
    rebuilt = optimizers.get(json.loads(json.dumps(optimizers.serialize(opt))))
    assert type(rebuilt) is cls
    assert rebuilt.get_config() == opt.get_config()


@pytest.mark.parametrize(
    ("name", "cls", "default_name", "lr"),
    [
        ("sgd", SGD, "SGD", 0.01),
        ("SGD", SGD, "SGD", 0.01),
        ("adam", Adam, "adam", 0.001),
        ("AdamW", AdamW, "adamw", 0.001),
        ("rmsprop", RMSprop, "rmsprop", 0.001),
        ("RMSprop", RMSprop, "rmsprop", 0.001),
        ("adagrad", Adagrad, "adagrad", 0.001),
    ],
)
def test_get_by_name(name: str, cls: type[Optimizer], default_name: str, lr: float) -> None:
    opt = optimizers.get(name)
    assert type(opt) is cls
    assert opt.name == default_name
    assert opt.learning_rate == lr
    assert opt.iterations == 0
    assert optimizers.get(opt) is opt


def test_keras_defaults() -> None:
    adamw = AdamW()
    assert (adamw.weight_decay, adamw.beta_1, adamw.beta_2, adamw.epsilon) == (
        0.004, 0.9, 0.999, 1e-7)
    rms = RMSprop()
    assert (rms.rho, rms.momentum, rms.epsilon, rms.centered) == (0.9, 0.0, 1e-7, False)
    ada = Adagrad()
    assert (ada.initial_accumulator_value, ada.epsilon) == (0.1, 1e-7)


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", ["adamm", "", 3, None, {"class_name": "Nope", "config": {}}])
def test_unknown_optimizer_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="Unknown optimizer.*Received: "):
        optimizers.get(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "0.1", None, True])
def test_bad_learning_rates_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="Received: learning_rate="):
        Adam(learning_rate=bad)  # type: ignore[arg-type]
    opt = SGD(learning_rate=0.5)
    with pytest.raises(ValueError, match="Received: learning_rate="):
        opt.learning_rate = bad  # type: ignore[assignment]
    assert opt.learning_rate == 0.5


def test_learning_rate_accepts_numpy_numbers_as_python_float() -> None:
    opt = Adam()
    opt.learning_rate = np.float32(0.25)
    assert type(opt.learning_rate) is float
    assert opt.learning_rate == 0.25


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SGD(clipnorm=1.0, clipvalue=1.0), "Only one of"),
        (lambda: Adam(clipnorm=-1.0), "clipnorm=-1.0"),
        (lambda: SGD(momentum=1.5), "momentum=1.5"),
        (lambda: Adam(beta_1=1.0), "beta_1=1.0"),
        (lambda: RMSprop(rho=-0.1), "rho=-0.1"),
        (lambda: Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value=-1.0"),
        (lambda: AdamW(weight_decay=None), "weight_decay=None"),  # type: ignore[arg-type]
    ],
)
def test_bad_hyperparameters_raise(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_apply_rejects_mismatched_buffers() -> None:
    opt = SGD()
    opt.build(np.zeros(4, np.float32), [(0, 4)])
    with pytest.raises(ValueError, match="dtype"):
        opt.apply(np.zeros(4, np.float32), np.zeros(4, np.float64))
    with pytest.raises(ValueError, match="built for 4 parameters"):
        opt.apply(np.zeros(5, np.float32), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="segments"):
        opt.build(np.zeros(4, np.float32), [(0, 3), (2, 4)])
