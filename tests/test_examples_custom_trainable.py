"""examples/custom_trainable.py: a model with no base class satisfies aiofit.Trainable."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aiofit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_trainable.py"


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLE))


def test_the_script_trains_and_prints_its_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy:")[1])
    assert accuracy >= 0.93  # softmax regression on the 8x8 digits


def test_the_model_is_trainable_without_a_base_class(example: dict[str, Any]) -> None:
    cls = example["SoftmaxRegression"]
    model = cls(64, 10)
    assert isinstance(model, aiofit.Trainable)
    assert cls.__mro__ == (cls, object)
    assert model.metrics_names == ["loss", "accuracy"]


def test_a_step_follows_the_cross_entropy_gradient(example: dict[str, Any]) -> None:
    model = example["SoftmaxRegression"](3, 2, learning_rate=1.0)
    x, y = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]]), np.array([1, 0])
    W, b = model.get_weights()
    logs = model.train_on_batch(x, y)

    def loss(W: np.ndarray, b: np.ndarray) -> float:
        z = x @ W + b
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(2), y].mean())

    assert logs["loss"] == pytest.approx(loss(W, b))
    eps = 1e-6
    for i, j in np.ndindex(W.shape):
        bumped = W.copy()
        bumped[i, j] += eps
        numeric = (loss(bumped, b) - loss(W, b)) / eps
        assert W[i, j] - model.W[i, j] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_bad_shapes_raise_data_error(example: dict[str, Any]) -> None:
    model = example["SoftmaxRegression"](3, 2)
    with pytest.raises(aiofit.DataError, match=r"Received: x with shape \(2, 4\)"):
        model.train_on_batch(np.zeros((2, 4)), np.zeros(2))
