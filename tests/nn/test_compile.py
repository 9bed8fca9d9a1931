"""compile(metrics=..., weighted_metrics=...): Keras 3's weighting and logs names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiofit.nn import Sequential, layers, load_model, metrics, optimizers

# Identity kernel + softmax: the predicted class of each row is its argmax.
X = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])  # predicts 0, 1, 2, 0
Y = np.array([0, 1, 0, 2])  # samples 0 and 1 right, 2 and 3 wrong


def _model(**compile_args: Any) -> Sequential:
    model = Sequential([layers.Input(shape=(3,)),
                        layers.Dense(3, activation="softmax", use_bias=False)],
                       dtype="float64", seed=0)
    model.set_weights([np.eye(3)])
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  **compile_args)
    return model


def test_metrics_ignore_sample_weights_and_weighted_metrics_use_them() -> None:
    model = _model(metrics=["accuracy"], weighted_metrics=["accuracy"])
    assert model.metrics_names == ["loss", "accuracy", "weighted_accuracy"]
    sw = np.array([3.0, 1.0, 1.0, 1.0])
    logs = model.test_on_batch(X, Y, sample_weight=sw)
    assert list(logs) == ["loss", "accuracy", "weighted_accuracy"]
    assert logs["accuracy"] == 0.5  # 2 of 4 right
    assert logs["weighted_accuracy"] == pytest.approx(4 / 6)  # (3 + 1) / (3 + 1 + 1 + 1)
    assert model.train_on_batch(X, Y, sample_weight=sw) == logs  # before the update


def test_class_weight_reaches_only_the_weighted_metrics() -> None:
    model = _model(metrics=["acc"], weighted_metrics=["acc"])
    logs = model.train_on_batch(X, Y, class_weight={1: 5.0})  # weights 1, 5, 1, 1
    assert logs["acc"] == 0.5
    assert logs["weighted_acc"] == pytest.approx(6 / 8)


def test_without_weights_both_kinds_agree_and_the_loss_is_unchanged() -> None:
    plain = _model(metrics=["accuracy"]).test_on_batch(X, Y)
    both = _model(metrics=["accuracy"], weighted_metrics=["accuracy"]).test_on_batch(X, Y)
    assert both == {**plain, "weighted_accuracy": 0.5}


def test_a_weighted_metric_alone_keeps_its_name() -> None:
    model = _model(weighted_metrics=["accuracy"])
    logs = model.test_on_batch(X, Y, sample_weight=np.array([3.0, 1.0, 1.0, 1.0]))
    assert list(logs) == ["loss", "accuracy"]
    assert logs["accuracy"] == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    ("plain", "weighted", "names"),
    [
        # CompileMetrics.result in keras/src/trainers/compile_utils.py
        (["acc", "acc"], [], ["acc", "acc_1"]),
        (["acc"], ["acc", "acc"], ["acc", "weighted_acc", "weighted_acc_1"]),
        (["sparse_categorical_accuracy"], ["acc", "sparse_categorical_accuracy"],
         ["sparse_categorical_accuracy", "acc", "weighted_sparse_categorical_accuracy"]),
        ([], ["acc", "acc"], ["acc", "weighted_acc"]),
    ],
)
def test_logs_names_follow_keras_3(plain: list[str], weighted: list[str],
                                   names: list[str]) -> None:
    model = _model(metrics=plain, weighted_metrics=weighted)
    assert model.metrics_names == ["loss", *names]
    assert list(model.test_on_batch(X, Y)) == ["loss", *names]


def test_compile_refuses_bad_weighted_metrics() -> None:
    with pytest.raises(TypeError, match="weighted_metrics='acc'"):
        _model(weighted_metrics="acc")
    with pytest.raises(ValueError, match="named 'loss'.*Received: weighted_metrics="):
        _model(weighted_metrics=[metrics.MeanSquaredError(name="loss")])
    # Keras would log both "acc_1"s under one key and lose one.
    with pytest.raises(ValueError, match="collide"):
        _model(metrics=["acc", metrics.SparseCategoricalAccuracy(name="acc_1"), "acc"])


def test_weighted_metrics_survive_save_and_load(tmp_path: Path) -> None:
    model = _model(metrics=["acc"],
                   weighted_metrics=["acc", metrics.SparseCategoricalAccuracy(name="sca")])
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.metrics_names == ["loss", "acc", "weighted_acc", "sca"]
    sw = np.array([3.0, 1.0, 1.0, 1.0])
    logs = loaded.test_on_batch(X, Y, sample_weight=sw)
    assert logs == model.test_on_batch(X, Y, sample_weight=sw)
    assert (logs["acc"], logs["sca"]) == (0.5, pytest.approx(4 / 6))
