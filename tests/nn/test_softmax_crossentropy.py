"""Cross-entropy under a softmax: the gradient with respect to the logits, directly.

A model whose last layer is a softmax Dense and whose loss is sparse categorical
cross-entropy on probabilities starts its backward pass from d loss / d logits
(``probs - onehot``, zero for a sample whose probability Keras clips) instead of
going through the loss's and the softmax's gradients. Checked against finite
differences, against the general path, and at the clipping bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiofit.nn import Sequential, layers, losses, optimizers
from aiofit.nn.activations import Softmax
from tests.nn.gradcheck import numerical_gradient


def _softmax(z: np.ndarray) -> np.ndarray:
    return Softmax().forward(z.copy())


def _model(loss: Any = "sparse_categorical_crossentropy", hidden: bool = True) -> Sequential:
    stack: list[Any] = [layers.Input(shape=(4,))]
    if hidden:
        stack.append(layers.Dense(5, activation="tanh"))
    stack.append(layers.Dense(3, activation="softmax"))
    model = Sequential(stack, seed=0, dtype="float64")
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss=loss)
    return model


def _data(n: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n), np.linspace(0.5, 2.0, n)


def _gradients(model: Sequential, x: Any, y: Any, **kw: Any) -> tuple[float, np.ndarray]:
    logs, grads = model.compute_gradients(x, y, **kw)
    return logs["loss"], grads.copy()


def _general_path(model: Sequential, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the model's loss refuse the shortcut, as a loss without one does."""
    monkeypatch.setattr(model.loss, "value_and_logits_grad", lambda *a, **k: None)


def test_logits_gradient_of_the_loss_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    sw = np.array([1.0, 0.5, 2.0, 0.0, 1.5])
    loss = losses.SparseCategoricalCrossentropy()
    result = loss.value_and_logits_grad(labels, _softmax(z), sw)
    assert result is not None
    value, grad = result
    assert value == loss(labels, _softmax(z), sw)  # the same loss, to the bit
    numeric = numerical_gradient(lambda: loss(labels, _softmax(z), sw), z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_a_softmax_model_takes_the_shortcut_and_matches_finite_differences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _model()
    x, y, sw = _data()
    calls: list[bool] = []
    last = model.layers[-1]
    original = last.backward_from_z  # type: ignore[attr-defined]

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(last, "backward_from_z", spy)
    before = model.get_weights()
    model.train_on_batch(x, y, sample_weight=sw)
    assert calls == [True]
    analytic = [b - a for b, a in zip(before, model.get_weights(), strict=True)]  # lr = 1
    for k in range(len(before)):
        probe = before[k].copy()  # perturbed in place by numerical_gradient

        def loss_at(k: int = k, probe: np.ndarray = probe) -> float:
            model.set_weights([probe if j == k else w for j, w in enumerate(before)])
            return model.test_on_batch(x, y, sample_weight=sw)["loss"]

        numeric = numerical_gradient(loss_at, probe)
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("hidden", [True, False])
def test_the_shortcut_equals_the_general_path(
    hidden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y, sw = _data(9)
    fast = _gradients(_model(hidden=hidden), x, y, sample_weight=sw, class_weight={1: 3.0})
    model = _model(hidden=hidden)
    _general_path(model, monkeypatch)
    general = _gradients(model, x, y, sample_weight=sw, class_weight={1: 3.0})
    assert fast[0] == general[0]
    np.testing.assert_allclose(fast[1], general[1], rtol=1e-10, atol=1e-15)
    assert np.abs(fast[1]).max() > 1e-3  # the batch does move the weights


def test_samples_keras_clips_pass_no_gradient_on_either_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One softmax layer; the kernel makes class 0's logit 60 above the others for
    # the first two samples: p = 1 - 2e-26 (clipped to 1 - 1e-7 when the label is
    # 0) and 9e-27 for the other classes (clipped to 1e-7 when the label is 2).
    x = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    y = np.array([0, 2, 1, 0])
    kernel = np.zeros((4, 3))
    kernel[0, 0] = 60.0
    kernel[1:, :] = np.random.default_rng(2).normal(size=(3, 3))
    results = []
    for shortcut in (True, False):
        model = _model(hidden=False)
        model.set_weights([kernel, np.zeros(3)])
        if not shortcut:
            _general_path(model, monkeypatch)
        results.append(_gradients(model, x, y))
        only_clipped = _gradients(model, x[:2], y[:2])
        np.testing.assert_array_equal(only_clipped[1], 0.0)  # Keras's clip stops the gradient
    assert results[0][0] == results[1][0]
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize(
    "loss",
    [losses.SparseCategoricalCrossentropy(from_logits=True), losses.CategoricalCrossentropy()],
)
def test_other_losses_keep_the_general_path(loss: losses.Loss) -> None:
    probs = _softmax(np.random.default_rng(3).normal(size=(4, 3)))
    assert loss.value_and_logits_grad(np.array([0, 1, 2, 1]), probs) is None
