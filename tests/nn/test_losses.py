"""Losses against Keras's documented numbers, closed forms and finite differences."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofit import DataError
from aiofit.nn import losses

# ------------------------------------------------------------------ helpers


def central_diff(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, one element at a time (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def _pred_and_true(name: str, from_logits: bool, shape: tuple[int, ...], seed: int):
    """Inputs away from clipping bounds and kinks, so finite differences are exact enough."""
    rng = np.random.default_rng(seed)
    n, c = shape[0], shape[-1]
    if name == "sparse":
        y_true = rng.integers(0, c, size=shape[:-1])
    elif name == "categorical":
        y_true = np.eye(c)[rng.integers(0, c, size=shape[:-1])]
    elif name == "binary":
        y_true = rng.integers(0, 2, size=shape).astype(np.float64)
    else:
        y_true = rng.normal(size=shape)
    if from_logits:
        y_pred = rng.normal(scale=3.0, size=shape)
    elif name in ("sparse", "categorical"):
        y_pred = rng.uniform(0.1, 1.0, size=shape)  # unnormalised: tests the renormalisation
    elif name == "binary":
        y_pred = rng.uniform(0.02, 0.98, size=shape)
    else:
        y_pred = y_true + rng.choice([-1, 1], size=shape) * rng.uniform(0.1, 3.0, size=shape)
    assert len(y_pred) == n
    return y_true, y_pred


LOSS_CASES = [
    ("regression", lambda fl: losses.MeanSquaredError()),
    ("regression", lambda fl: losses.MeanAbsoluteError()),
    ("regression", lambda fl: losses.Huber(delta=1.0)),
    ("regression", lambda fl: losses.Huber(delta=0.7)),
    ("binary", lambda fl: losses.BinaryCrossentropy(from_logits=fl)),
    ("binary", lambda fl: losses.BinaryCrossentropy(from_logits=fl, label_smoothing=0.2)),
    ("categorical", lambda fl: losses.CategoricalCrossentropy(from_logits=fl)),
    ("categorical", lambda fl: losses.CategoricalCrossentropy(fl, label_smoothing=0.1)),
    ("sparse", lambda fl: losses.SparseCategoricalCrossentropy(from_logits=fl)),
]


# ------------------------------------------------------- documented values


def test_mse_closed_form() -> None:
    assert losses.get("mse")([[1.0, 2.0]], np.zeros((1, 2))) == pytest.approx(2.5)


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_regression_keras_doc_examples(name: str) -> None:
    y_true = [[0.0, 1.0], [0.0, 0.0]]
    y_pred = np.array([[1.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    loss = losses.get(name)
    assert loss(y_true, y_pred) == pytest.approx(0.5)
    assert loss(y_true, y_pred, sample_weight=[0.7, 0.3]) == pytest.approx(0.25)


def test_huber_keras_doc_example() -> None:
    y_true = [[0, 1], [0, 0]]
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]], dtype=np.float32)
    h = losses.Huber()
    assert h(y_true, y_pred) == pytest.approx(0.155, abs=1e-6)
    assert h(y_true, y_pred, sample_weight=[1, 0]) == pytest.approx(0.09, abs=1e-6)


def test_huber_linear_branch_closed_form() -> None:
    # |err| = 3 > delta = 2: delta * |err| - delta**2 / 2 = 6 - 2 = 4
    assert losses.Huber(delta=2.0)([[0.0]], [[3.0]]) == pytest.approx(4.0)


def test_bce_keras_doc_examples() -> None:
    per_sample = losses.BinaryCrossentropy().per_sample(
        [[0, 1], [0, 0]], np.array([[0.6, 0.4], [0.4, 0.6]], dtype=np.float32)
    )
    np.testing.assert_allclose(per_sample, [0.916, 0.714], atol=5e-4)
    bce = losses.BinaryCrossentropy(from_logits=True)
    y_true, logits = [[0, 1], [0, 0]], np.array([[-18.6, 0.51], [2.94, -12.8]], np.float32)
    assert bce(y_true, logits) == pytest.approx(0.865, abs=5e-4)
    # Keras prints 0.243 (truncated); by hand (0.8 * 0.235175 + 0.2 * 1.495771) / 2 = 0.243647
    assert bce(y_true, logits, sample_weight=[0.8, 0.2]) == pytest.approx(0.243647, abs=1e-5)
    flat = bce([0, 1, 0, 0], np.array([-18.6, 0.51, 2.94, -12.8], np.float32))
    assert flat == pytest.approx(0.865, abs=5e-4)


def test_bce_label_smoothing_closed_form() -> None:
    # target 1 smoothed by 0.2 -> 0.9
    expected = -(0.9 * math.log(0.8) + 0.1 * math.log(0.2))
    loss = losses.BinaryCrossentropy(label_smoothing=0.2)
    assert loss([[1.0]], [[0.8]]) == pytest.approx(expected)


@pytest.mark.parametrize("sparse", [False, True])
def test_cce_keras_doc_examples(sparse: bool) -> None:
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]], dtype=np.float32)
    if sparse:
        loss, y_true = losses.SparseCategoricalCrossentropy(), np.array([1, 2])
    else:
        loss, y_true = losses.CategoricalCrossentropy(), np.array([[0, 1, 0], [0, 0, 1]])
    assert loss(y_true, y_pred) == pytest.approx(1.177, abs=5e-4)
    assert loss(y_true, y_pred, sample_weight=[0.3, 0.7]) == pytest.approx(0.814, abs=5e-4)


def test_cce_renormalises_and_smooths() -> None:
    # y_pred [2, 5, 3] is renormalised to [0.2, 0.5, 0.3]; smoothing 0.3 over 3 classes
    t = [0.1, 0.8, 0.1]
    expected = -(t[0] * math.log(0.2) + t[1] * math.log(0.5) + t[2] * math.log(0.3))
    loss = losses.CategoricalCrossentropy(label_smoothing=0.3)
    assert loss([[0, 1, 0]], [[2.0, 5.0, 3.0]]) == pytest.approx(expected)


def test_sparse_labels_shapes_and_float_values() -> None:
    y_pred = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])
    loss = losses.SparseCategoricalCrossentropy()
    expected = -(math.log(0.7) + math.log(0.5)) / 2
    for labels in ([1, 0], [[1], [0]], np.array([1.0, 0.0]), np.array([[1.0], [0.0]])):
        assert loss(labels, y_pred) == pytest.approx(expected)


# ------------------------------------------------------------- reduction


def test_weights_divide_by_batch_size_not_by_weight_sum() -> None:
    loss = losses.MeanSquaredError()
    y_true, y_pred = np.zeros((4, 1)), np.array([[1.0], [2.0], [3.0], [4.0]])
    # per-sample [1, 4, 9, 16]; only the first weighs: 1 / 4, not 1 / 1
    assert loss(y_true, y_pred, sample_weight=[1, 0, 0, 0]) == pytest.approx(0.25)
    assert loss(y_true, y_pred, sample_weight=[[2], [0], [0], [1]]) == pytest.approx(18 / 4)
    value, grad = loss.value_and_grad(y_true, y_pred, sample_weight=[1, 0, 0, 0])
    assert value == pytest.approx(0.25)
    np.testing.assert_allclose(grad, [[2 * 1 / 4], [0], [0], [0]])


def test_per_sample_means_over_the_last_axis() -> None:
    per = losses.MeanAbsoluteError().per_sample([[0, 0, 0], [1, 1, 1]], [[1, 2, 3], [1, 1, 4]])
    np.testing.assert_allclose(per, [2.0, 1.0])


# ----------------------------------------------------------- gradients


GRAD_CASES = [
    (case, from_logits)
    for case, (kind, _) in enumerate(LOSS_CASES)
    for from_logits in ([False] if kind == "regression" else [False, True])
]


@pytest.mark.parametrize(("case", "from_logits"), GRAD_CASES)
@pytest.mark.parametrize("weighted", [False, True])
@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(1, 4),
    extra=st.sampled_from([(), (2,)]),
    c=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_value_and_grad_match_finite_differences(
    case: int, from_logits: bool, weighted: bool, n: int, extra: tuple[int, ...], c: int,
    seed: int,
) -> None:
    kind, make = LOSS_CASES[case]
    if kind in ("categorical", "sparse"):
        c = max(c, 2)
    loss = make(from_logits)
    shape = (n, *extra, c)
    y_true, y_pred = _pred_and_true(kind, from_logits, shape, seed)
    w = np.random.default_rng(seed + 1).uniform(0, 2, size=n) if weighted else None

    value, grad = loss.value_and_grad(y_true, y_pred, w)
    assert value == pytest.approx(loss(y_true, y_pred, w), rel=1e-12)
    expected_value = np.sum(loss.per_sample(y_true, y_pred) * (1 if w is None else w)) / n
    assert value == pytest.approx(expected_value, rel=1e-12)
    assert grad.shape == y_pred.shape
    assert grad.dtype == y_pred.dtype
    numeric = central_diff(lambda p: loss(y_true, p, w), y_pred.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("case", range(len(LOSS_CASES)))
def test_float32_in_float32_out(case: int) -> None:
    kind, make = LOSS_CASES[case]
    loss = make(False)
    y_true, y_pred = _pred_and_true(kind, False, (3, 4), seed=case)
    y32 = y_pred.astype(np.float32)
    value, grad = loss.value_and_grad(y_true, y32, np.ones(3, np.float32))
    assert grad.dtype == np.float32
    _, grad64 = loss.value_and_grad(y_true, y_pred, np.ones(3))
    np.testing.assert_allclose(grad, grad64, rtol=1e-4, atol=1e-6)
    assert value == pytest.approx(loss(y_true, y_pred), rel=1e-5)


# ------------------------------------------------------ clipping, stability


def test_bce_clipped_elements_get_zero_gradient() -> None:
    loss = losses.BinaryCrossentropy()
    y_pred = np.array([[0.0, 1.0, 0.5, 1e-9]])
    value, grad = loss.value_and_grad([[1.0, 0.0, 1.0, 0.0]], y_pred)
    assert np.isfinite(value)
    assert grad[0, 0] == 0
    assert grad[0, 1] == 0
    assert grad[0, 3] == 0
    # unclipped element: d/dp of -log(p) / 4 at 0.5
    assert grad[0, 2] == pytest.approx(-1 / 0.5 / 4)
    # clip bound value: -log(1e-7) for the two saturated wrong predictions
    expected = (2 * -math.log(1e-7) - math.log(0.5) - math.log(1 - 1e-7)) / 4
    assert value == pytest.approx(expected, rel=1e-6)


def test_cce_gradient_with_a_clipped_entry_matches_finite_differences() -> None:
    # q[0] = 1e-9 / s is far below 1e-7: it is clipped, yet the renormalisation still
    # couples p[0] to the loss through the sum
    loss = losses.CategoricalCrossentropy()
    y_true = np.array([[0.0, 1.0, 0.0]])
    y_pred = np.array([[1e-9, 0.6, 0.4]])
    _, grad = loss.value_and_grad(y_true, y_pred)
    numeric = central_diff(lambda p: loss(y_true, p), y_pred.copy(), h=1e-10)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_are_finite_and_exact(dtype: type) -> None:
    bce = losses.BinaryCrossentropy(from_logits=True)
    logits = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype=dtype)
    value, grad = bce.value_and_grad([[0.0], [1.0], [1.0], [0.0]], logits)
    assert value == pytest.approx((1e4 + 1e4) / 4)
    np.testing.assert_allclose(grad, [[0.25], [-0.25], [0], [0]], atol=1e-7)

    for loss, y in [
        (losses.CategoricalCrossentropy(from_logits=True), [[0, 1, 0]]),
        (losses.SparseCategoricalCrossentropy(from_logits=True), [1]),
    ]:
        value, grad = loss.value_and_grad(y, np.array([[1e4, -1e4, 0.0]], dtype=dtype))
        assert value == pytest.approx(2e4)
        np.testing.assert_allclose(grad, [[1, -1, 0]], atol=1e-7)
        assert np.isfinite(grad).all()


# ------------------------------------------------------------- bad input


def test_sparse_labels_out_of_range_or_fractional_raise() -> None:
    loss = losses.SparseCategoricalCrossentropy()
    y_pred = np.full((2, 3), 1 / 3)
    with pytest.raises(DataError, match=r"\[0, 3\).*received 3"):
        loss([0, 3], y_pred)
    with pytest.raises(DataError, match="received -1"):
        loss([-1, 0], y_pred)
    with pytest.raises(DataError, match="received 1.5"):
        loss([1.5, 0], y_pred)
    with pytest.raises(DataError, match=r"shape \(2,\) or \(2, 1\).*received shape \(2, 3\)"):
        loss(np.zeros((2, 3)), y_pred)


def test_mismatched_shapes_and_weights_raise() -> None:
    with pytest.raises(DataError, match=r"received y_true with shape \(3, 1\)"):
        losses.MeanSquaredError()(np.zeros((3, 1)), np.zeros((2, 1)))
    with pytest.raises(DataError, match=r"sample_weight.*received shape \(3,\)"):
        losses.MeanSquaredError()(np.zeros((2, 1)), np.zeros((2, 1)), sample_weight=[1, 1, 1])
    with pytest.raises(DataError, match="class axis"):
        losses.CategoricalCrossentropy()([1.0, 0.0], [0.3, 0.7])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: losses.Huber(delta=0.0), "delta=0.0"),
        (lambda: losses.Huber(delta=-1.0), "delta=-1.0"),
        (lambda: losses.BinaryCrossentropy(label_smoothing=1.5), "label_smoothing=1.5"),
        (lambda: losses.CategoricalCrossentropy(label_smoothing=-0.1), "label_smoothing=-0.1"),
    ],
)
def test_bad_hyperparameters_raise(make: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------- get/config


@pytest.mark.parametrize(
    ("name", "cls", "kind"),
    [
        ("mean_squared_error", losses.MeanSquaredError, "regression"),
        ("mse", losses.MeanSquaredError, "regression"),
        ("mean_absolute_error", losses.MeanAbsoluteError, "regression"),
        ("mae", losses.MeanAbsoluteError, "regression"),
        ("huber", losses.Huber, "regression"),
        ("binary_crossentropy", losses.BinaryCrossentropy, "binary"),
        ("categorical_crossentropy", losses.CategoricalCrossentropy, "categorical"),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy, "sparse"),
    ],
)
def test_get_by_name(name: str, cls: type, kind: str) -> None:
    loss = losses.get(name)
    assert type(loss) is cls
    assert loss.kind == kind
    rebuilt = losses.get(json.loads(json.dumps(losses.serialize(loss))))
    assert type(rebuilt) is cls
    assert rebuilt.get_config() == loss.get_config()


def test_get_keeps_instances_and_round_trips_config() -> None:
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, name="cce")
    assert losses.get(loss) is loss
    assert loss.from_logits is True
    config = json.loads(json.dumps(loss.get_config()))
    assert config == {"name": "cce", "from_logits": True, "label_smoothing": 0.1}
    rebuilt = losses.CategoricalCrossentropy.from_config(config)
    y, p = [[0, 1, 0]], [[0.3, 2.0, -1.0]]
    assert rebuilt(y, p) == loss(y, p)
    assert losses.Huber(delta=2.0).get_config() == {"name": "huber_loss", "delta": 2.0}


@pytest.mark.parametrize("bad", ["msee", "", 3, None, lambda y, p: y])
def test_get_unknown_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="Unknown loss.*Received: "):
        losses.get(bad)  # type: ignore[arg-type]
