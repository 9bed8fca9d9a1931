"""Every bad batch from API.md raises DataError and leaves the model untouched."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiofit import DataError
from aiofit.nn import Sequential, layers

N = 6


def _model(loss: str, units: int, activation: str) -> Sequential:
    model = Sequential([layers.Input(shape=(20,)), layers.Dense(8, activation="relu"),
                        layers.BatchNormalization(), layers.Dropout(0.3),
                        layers.Dense(units, activation=activation)], seed=0)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def _snapshot(model: Sequential) -> tuple[list[np.ndarray], dict[str, Any], dict[str, Any]]:
    return model.get_weights(), model.optimizer.get_state(), model.rng.bit_generator.state


def _assert_unchanged(model: Sequential, before: Any) -> None:
    weights, opt_state, rng_state = _snapshot(model)
    for a, b in zip(before[0], weights, strict=True):  # includes BN moving statistics
        np.testing.assert_array_equal(a, b)
    assert opt_state.keys() == before[1].keys()
    for key, value in opt_state.items():
        np.testing.assert_array_equal(value, before[1][key])
    assert rng_state == before[2]


def _x(n: int = N, features: int = 20) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, features)).astype(np.float32)


def _nan_x() -> np.ndarray:
    x = _x()
    x[2, 5] = np.nan
    return x


SPARSE = ("sparse_categorical_crossentropy", 3, "softmax")
CATEGORICAL = ("categorical_crossentropy", 3, "softmax")
BINARY = ("binary_crossentropy", 1, "sigmoid")
REGRESSION = ("mse", 2, "linear")
LABELS = np.array([0, 1, 2, 0, 1, 2])

CASES = [
    pytest.param(SPARSE, _x(features=19), LABELS, None,
                 r"x has feature shape \(19,\) but the model expects \(20,\)", id="features"),
    pytest.param(SPARSE, np.full((N, 20), "a"), LABELS, None, "numeric", id="strings"),
    pytest.param(SPARSE, np.zeros((0, 20)), LABELS[:0], None, "empty", id="empty"),
    pytest.param(SPARSE, _nan_x(), LABELS, None, r"non-finite.*\(2, 5\)", id="nan-x"),
    pytest.param(SPARSE, _x(), LABELS[:5], None, "different lengths", id="lengths"),
    pytest.param(SPARSE, [[0.0] * 20] * 5 + [[0.0] * 19], LABELS, None,
                 "x cannot be made into one numeric array.*different lengths", id="ragged-x"),
    pytest.param(SPARSE, _x(), [[0], [1], [2], [0], [1], [2, 0]], None,
                 "y cannot be made into one numeric array", id="ragged-y"),
    pytest.param(SPARSE, _x(), LABELS, [[1.0], [1.0], [1.0], [1.0], [1.0], [1.0, 2.0]],
                 "sample_weight cannot be made into one numeric array", id="ragged-weight"),
    pytest.param(SPARSE, {"features": _x()}, LABELS, None,
                 r"x must be a numeric array; received a dict with keys \['features'\]",
                 id="dict-x"),
    pytest.param(SPARSE, "abc", LABELS, None,
                 "x must be a numeric array; received a str 'abc'", id="string-x"),
    pytest.param(SPARSE, _x(), "012012", None,
                 "y must be a numeric array; received a str '012012'", id="string-y"),
    pytest.param(SPARSE, _x(), LABELS, np.array([1, 1, np.inf, 1, 1, 1.0]), "non-finite",
                 id="inf-weight"),
    pytest.param(SPARSE, _x(), LABELS, -np.ones(N), "non-negative", id="negative-weight"),
    pytest.param(SPARSE, _x(), np.array([0, 1, 2, 3, 1, 2]), None,
                 r"label 3 at index 3 is outside the model's output range \[0, 3\)",
                 id="label-too-big"),
    pytest.param(SPARSE, _x(), np.array([0, -1, 2, 0, 1, 2]), None, "label -1 at index 1",
                 id="label-negative"),
    pytest.param(SPARSE, _x(), np.array([0, 1, 1.5, 0, 1, 2]), None,
                 "must be integers; received 1.5 at index 2", id="label-fractional"),
    pytest.param(SPARSE, _x(), np.eye(3)[LABELS], None, r"sparse labels must have shape",
                 id="onehot-for-sparse"),
    pytest.param(CATEGORICAL, _x(), np.eye(4)[LABELS], None,
                 r"y has shape \(4,\) per sample but the model outputs \(3,\)",
                 id="onehot-width"),
    pytest.param(BINARY, _x(), np.array([0, 1, 2, 0, 1, 0]), None,
                 r"binary targets must be in \[0, 1\]; received 2", id="binary-range"),
    pytest.param(REGRESSION, _x(), np.zeros((N, 3)), None, r"Received: y with shape \(6, 3\)",
                 id="regression-shape"),
    pytest.param(REGRESSION, _x(), np.full((N, 2), np.nan), None, "y contains non-finite",
                 id="regression-nan"),
]


@pytest.mark.parametrize(("spec", "x", "y", "sw", "match"), CASES)
def test_bad_batches_raise_and_change_nothing(
    spec: tuple[str, int, str], x: Any, y: Any, sw: Any, match: str
) -> None:
    model = _model(*spec)
    good_y = {1: np.array([0, 1, 1, 0, 1, 0]), 2: np.zeros((N, 2))}.get(spec[1], LABELS)
    if spec[0] == "categorical_crossentropy":
        good_y = np.eye(3)[LABELS]
    model.train_on_batch(_x(), good_y)  # so the optimizer has state to protect
    before = _snapshot(model)
    with pytest.raises(DataError, match=match) as info:
        model.train_on_batch(x, y, sample_weight=sw)
    assert str(info.value).startswith("train_on_batch: ")
    _assert_unchanged(model, before)
    with pytest.raises(DataError, match=match) as info:
        model.test_on_batch(x, y, sample_weight=sw, _where="batch 12")
    assert str(info.value).startswith("batch 12: ")
    _assert_unchanged(model, before)


def test_class_weight_on_a_rejected_batch_changes_nothing() -> None:
    model = _model(*SPARSE)
    before = _snapshot(model)
    with pytest.raises(DataError, match="label 7"):
        model.train_on_batch(_x(), np.array([0, 1, 7, 0, 1, 2]), class_weight={0: 2.0})
    _assert_unchanged(model, before)


def test_predict_on_batch_checks_inputs() -> None:
    model = _model(*SPARSE)
    with pytest.raises(DataError, match=r"^predict_on_batch: x has feature shape \(3,\)"):
        model.predict_on_batch(np.zeros((2, 3)))
    with pytest.raises(DataError, match="^batch 4: x contains non-finite"):
        model.predict_on_batch(_nan_x(), _where="batch 4")


def test_a_rejected_first_batch_leaves_an_unbuilt_model_unbuilt() -> None:
    model = Sequential([layers.Dense(4, activation="relu"), layers.Dropout(0.5),
                        layers.Dense(3, activation="softmax")], seed=5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    state = model.rng.bit_generator.state
    with pytest.raises(DataError, match="label 3 at index 0"):
        model.train_on_batch(_x(), np.array([3, 0, 0, 0, 0, 0]))
    assert not model.built
    assert model.rng.bit_generator.state == state
    reference = Sequential([layers.Dense(4, activation="relu"), layers.Dropout(0.5),
                            layers.Dense(3, activation="softmax")], seed=5)
    for m in (model, reference):
        m.build((None, 20))
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_labels_as_integral_floats_and_column_vectors_are_accepted() -> None:
    model = _model(*SPARSE)
    as_int = model.test_on_batch(_x(), LABELS)
    assert model.test_on_batch(_x(), LABELS.astype(np.float32))["loss"] == as_int["loss"]
    assert model.test_on_batch(_x(), LABELS[:, None])["loss"] == as_int["loss"]


def test_y_is_required() -> None:
    model = _model(*SPARSE)
    with pytest.raises(DataError, match="y is required"):
        model.train_on_batch(_x(), None)


class _AddAxis(layers.Layer):
    """Output (features, 1): a Dense after it refuses to build."""

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape, 1)


def test_a_first_batch_a_layer_cannot_build_on_leaves_the_model_unbuilt() -> None:
    model = Sequential([layers.Dense(4), _AddAxis(), layers.Dense(2)], seed=1)
    model.compile(optimizer="sgd", loss="mse")
    state = model.rng.bit_generator.state
    with pytest.raises(ValueError, match="rank 2"):  # after the first Dense drew its kernel
        model.train_on_batch(np.zeros((3, 5)), np.zeros((3, 2)))
    assert not model.built
    assert model.rng.bit_generator.state == state
