"""Metrics on hand-made batches, checked against values counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from aiofit import DataError
from aiofit.nn import metrics

PROBS = np.array(
    [
        [0.1, 0.6, 0.3],  # argmax 1
        [0.5, 0.2, 0.3],  # argmax 0
        [0.2, 0.3, 0.5],  # argmax 2
        [0.3, 0.4, 0.3],  # argmax 1
    ],
    dtype=np.float32,
)
LABELS = np.array([1, 2, 2, 0])  # right, wrong, right, wrong


def test_sparse_categorical_accuracy_unweighted_and_weighted() -> None:
    m = metrics.get("sparse_categorical_accuracy")
    assert m.name == "sparse_categorical_accuracy"
    assert m(LABELS, PROBS) == 0.5
    assert m(LABELS[:, None], PROBS) == 0.5
    assert m(LABELS.astype(np.float32), PROBS) == 0.5
    # weights on the right answers 1 + 3 = 4 out of a total of 10
    assert m(LABELS, PROBS, sample_weight=[1, 2, 3, 4]) == pytest.approx(0.4)


def test_categorical_accuracy() -> None:
    one_hot = np.eye(3)[LABELS]
    m = metrics.get("categorical_accuracy")
    assert m(one_hot, PROBS) == 0.5
    assert m(one_hot, PROBS, sample_weight=[0, 1, 0, 1]) == 0.0
    assert m(one_hot, PROBS, sample_weight=[[1], [0], [0], [0]]) == 1.0


def test_binary_accuracy_thresholds_at_half() -> None:
    y_true = np.array([[1], [0], [1], [0], [1]])
    y_pred = np.array([[0.7], [0.2], [0.5], [0.51], [0.9]])  # 0.5 is not > 0.5
    m = metrics.get("binary_accuracy")
    assert m(y_true, y_pred) == pytest.approx(3 / 5)
    assert m(y_true.ravel(), y_pred) == pytest.approx(3 / 5)
    assert m(y_true, y_pred, sample_weight=[1, 1, 2, 2, 0]) == pytest.approx(2 / 6)
    assert metrics.BinaryAccuracy(threshold=0.6)(y_true, y_pred) == pytest.approx(4 / 5)


def test_binary_accuracy_averages_multi_label_rows() -> None:
    m = metrics.BinaryAccuracy()
    np.testing.assert_allclose(m.per_sample([[1, 0], [1, 1]], [[0.9, 0.8], [0.7, 0.6]]), [0.5, 1])


@pytest.mark.parametrize("name", ["accuracy", "acc", "Accuracy"])
def test_accuracy_keeps_the_name_the_user_passed(name: str) -> None:
    m = metrics.get(name)
    assert m.name == name


def test_accuracy_resolves_per_call_like_keras() -> None:
    acc = metrics.get("acc")
    # y_pred last dim 1 -> binary (threshold 0.5)
    assert acc([[1], [0]], [[0.7], [0.7]]) == 0.5
    # y_true rank lower than y_pred -> sparse categorical
    assert acc(LABELS, PROBS) == 0.5
    # y_true last dim 1, y_pred last dim > 1 -> sparse categorical
    assert acc(LABELS[:, None], PROBS) == 0.5
    # same shapes -> categorical
    assert acc(np.eye(3)[LABELS], PROBS) == 0.5
    # raw logits are thresholded at 0.5 as Keras does: logit 0.2 (sigmoid 0.55) reads as 0
    assert acc([[1], [0], [1]], [[2.0], [-3.0], [0.2]]) == pytest.approx(2 / 3)


def test_resolve_accuracy_follows_compile_utils_rule() -> None:
    assert metrics.resolve_accuracy(np.zeros((4,)), np.zeros((4, 1))) is metrics.binary_accuracy
    assert metrics.resolve_accuracy(np.zeros((4,)), np.zeros((4, 3))) is (
        metrics.sparse_categorical_accuracy)
    assert metrics.resolve_accuracy(np.zeros((4, 1)), np.zeros((4, 3))) is (
        metrics.sparse_categorical_accuracy)
    assert metrics.resolve_accuracy(np.zeros((4, 3)), np.zeros((4, 3))) is (
        metrics.categorical_accuracy)


def test_top_k_accuracy() -> None:
    y_pred = np.array(
        [
            [0.05, 0.1, 0.2, 0.3, 0.15, 0.2],
            [0.3, 0.1, 0.2, 0.15, 0.05, 0.2],
        ]
    )
    # class 0 of row 0 is the 6th largest; class 4 of row 1 is the 6th largest
    labels = np.array([0, 3])
    sparse = metrics.get("sparse_top_k_categorical_accuracy")
    assert sparse(labels, y_pred) == 0.5  # row 1: class 3 (0.15) is 4th largest
    assert sparse([1, 4], y_pred) == 0.5  # class 1 (0.1) is 5th in row 0; class 4 is 6th
    dense = metrics.get("top_k_categorical_accuracy")
    assert dense(np.eye(6)[labels], y_pred) == 0.5
    assert metrics.SparseTopKCategoricalAccuracy(k=1)([3, 0], y_pred) == 1.0
    assert metrics.TopKCategoricalAccuracy(k=2)(np.eye(6)[[2, 2]], y_pred) == 1.0


def test_top_k_ties_count_as_in_top_k() -> None:
    # Keras's in_top_k: a score equal to the k-th largest is in the top k
    y_pred = np.array([[0.4, 0.2, 0.2, 0.2]])
    assert metrics.SparseTopKCategoricalAccuracy(k=2)([3], y_pred) == 1.0
    assert metrics.SparseTopKCategoricalAccuracy(k=1)([3], y_pred) == 0.0


@pytest.mark.parametrize(
    ("name", "mean", "second"), [("mae", 1.25, 1.5), ("mse", 1.75, 2.5)]
)
def test_regression_metrics(name: str, mean: float, second: float) -> None:
    y_true = np.array([[0.0, 0.0], [1.0, 1.0]])
    y_pred = np.array([[1.0, -1.0], [3.0, 2.0]])  # abs errors [1, 1] and [2, 1]
    m = metrics.get(name)
    assert m.name == name
    assert m(y_true, y_pred) == pytest.approx(mean)
    assert m(y_true, y_pred, sample_weight=[0, 5]) == pytest.approx(second)


def test_long_names_and_instances() -> None:
    assert metrics.get("mean_absolute_error").name == "mean_absolute_error"
    instance = metrics.MeanSquaredError(name="my_mse")
    assert metrics.get(instance) is instance


def test_plain_function_metric_uses_its_name_and_weights() -> None:
    def max_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.max(np.abs(y_true - y_pred), axis=-1)

    m = metrics.get(max_error)
    assert m.name == "max_error"
    y_true, y_pred = np.zeros((2, 2)), np.array([[1.0, 3.0], [2.0, 0.0]])
    assert m(y_true, y_pred) == pytest.approx(2.5)
    assert m(y_true, y_pred, sample_weight=[3, 1]) == pytest.approx((9 + 2) / 4)


def test_zero_total_weight_gives_zero_like_keras() -> None:
    assert metrics.get("mae")([[1.0]], [[3.0]], sample_weight=[0.0]) == 0.0


def test_bad_input_raises() -> None:
    with pytest.raises(DataError, match=r"received shape \(3,\)"):
        metrics.get("mae")([[1.0], [2.0]], [[1.0], [2.0]], sample_weight=[1, 1, 1])
    with pytest.raises(DataError, match=r"received y_true with shape \(3, 1\)"):
        metrics.get("mse")(np.zeros((3, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="one value per sample"):
        metrics.get(lambda y, p: np.float64(1.0))(np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="k=0"):
        metrics.TopKCategoricalAccuracy(k=0)


@pytest.mark.parametrize("bad", ["acuracy", "", 3, None])
def test_unknown_metric_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="Unknown metric.*Received: "):
        metrics.get(bad)  # type: ignore[arg-type]
