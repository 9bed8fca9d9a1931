"""Cross-entropy under a softmax: the gradient with respect to the logits, directly.

A model whose last layer ends in a softmax (a softmax Dense, or an
Activation("softmax") layer) and whose loss is a categorical
cross-entropy on probabilities (sparse or not) starts its backward pass from
d loss / d logits (``probs * sum(t) - t``, with the entries Keras clips left
out) instead of going through the loss's and the softmax's gradients. Checked
against finite differences, against the general path, and at the clipping bounds.
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


def _model(loss: Any = "sparse_categorical_crossentropy", hidden: bool = True,
           separate: bool = False) -> Sequential:
    """A softmax classifier; ``separate`` puts the softmax in an Activation layer."""
    stack: list[Any] = [layers.Input(shape=(4,))]
    if hidden:
        stack.append(layers.Dense(5, activation="tanh"))
    if separate:
        stack += [layers.Dense(3), layers.Activation("softmax")]
    else:
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


_LABELS = np.array([0, 3, 1, 1, 2])
_SOFT = np.random.default_rng(5).dirichlet(np.ones(4), size=5)


@pytest.mark.parametrize(
    ("loss", "labels"),
    [
        (losses.SparseCategoricalCrossentropy(), _LABELS),
        (losses.CategoricalCrossentropy(), np.eye(4)[_LABELS]),
        (losses.CategoricalCrossentropy(label_smoothing=0.2), np.eye(4)[_LABELS]),
        (losses.CategoricalCrossentropy(), _SOFT),
    ],
    ids=["sparse", "one-hot", "smoothed", "soft"],
)
def test_logits_gradient_of_the_loss_matches_finite_differences(
    loss: losses.Loss, labels: np.ndarray
) -> None:
    z = np.random.default_rng(0).normal(size=(5, 4)) * 3
    sw = np.array([1.0, 0.5, 2.0, 0.0, 1.5])
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


@pytest.mark.parametrize("separate", [False, True], ids=["in-dense", "activation-layer"])
@pytest.mark.parametrize("hidden", [True, False])
@pytest.mark.parametrize(
    "loss",
    ["sparse_categorical_crossentropy", "categorical_crossentropy",
     losses.CategoricalCrossentropy(label_smoothing=0.1)],
    ids=["sparse", "categorical", "smoothed"],
)  # fmt: skip
def test_the_shortcut_equals_the_general_path(
    hidden: bool, loss: Any, separate: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, labels, sw = _data(9)
    y = labels if loss == "sparse_categorical_crossentropy" else np.eye(3)[labels]
    kw = {"sample_weight": sw, "class_weight": {1: 3.0}}
    fast = _gradients(_model(loss, hidden=hidden, separate=separate), x, y, **kw)
    model = _model(loss, hidden=hidden, separate=separate)
    _general_path(model, monkeypatch)
    general = _gradients(model, x, y, **kw)
    assert fast[0] == general[0]
    np.testing.assert_allclose(fast[1], general[1], rtol=1e-10, atol=1e-15)
    assert np.abs(fast[1]).max() > 1e-3  # the batch does move the weights


def test_a_separate_softmax_layer_takes_the_shortcut_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Dense(3)`` then ``Activation("softmax")`` starts from the logits' gradient
    (the Activation's own softmax backward is never called) and computes exactly
    what ``Dense(3, activation="softmax")`` computes, to rounding."""
    x, y, sw = _data()
    model = _model(separate=True)
    softmax_layer = model.layers[-1]

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the softmax's backward ran: the shortcut was not taken")

    monkeypatch.setattr(softmax_layer, "backward", refuse)
    fused = _model()
    fused.set_weights(model.get_weights())
    separate, together = _gradients(model, x, y, sample_weight=sw), _gradients(
        fused, x, y, sample_weight=sw)
    assert separate[0] == pytest.approx(together[0], rel=1e-14)
    np.testing.assert_allclose(separate[1], together[1], rtol=1e-10, atol=1e-15)
    assert np.abs(separate[1]).max() > 1e-3


def test_samples_keras_clips_pass_no_gradient_on_either_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One softmax layer; the kernel makes class 0's logit 60 above the others for
    # the first two samples: p = 1 - 2e-26 (clipped to 1 - 1e-7 when the label is
    # 0) and 9e-27 for the other classes (clipped to 1e-7 when the label is 2).
    x = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
    y = np.array([0, 2, 1, 0])
    kernel = np.zeros((4, 3))
    kernel[0, 0] = 60.0
    kernel[1:3, :] = np.random.default_rng(2).normal(size=(2, 3))
    kernel[3] = [20.0, 20.0, 0.0]  # the last sample: p = [0.5, 0.5, 1e-9]
    # Soft targets: the last sample's clipped entry carries a quarter of its target,
    # the other three samples are one-hot.
    soft = np.eye(3)[y]
    soft[3] = [0.5, 0.25, 0.25]
    for loss, targets in (("sparse_categorical_crossentropy", y),
                          ("categorical_crossentropy", np.eye(3)[y]),
                          ("categorical_crossentropy", soft)):  # fmt: skip
        results = []
        for shortcut in (True, False):
            model = _model(loss, hidden=False)
            model.set_weights([kernel, np.zeros(3)])
            if not shortcut:
                _general_path(model, monkeypatch)
            results.append(_gradients(model, x, targets))
            if targets is not soft:  # one-hot: Keras's clip stops the whole sample
                np.testing.assert_array_equal(_gradients(model, x[:2], targets[:2])[1], 0.0)
        assert results[0][0] == results[1][0]
        np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize(
    ("loss", "y"),
    [
        (losses.SparseCategoricalCrossentropy(from_logits=True), np.array([0, 1, 2, 1])),
        (losses.CategoricalCrossentropy(from_logits=True), np.eye(3)[[0, 1, 2, 1]]),
        (losses.MeanSquaredError(), np.eye(3)[[0, 1, 2, 1]]),
    ],
)
def test_other_losses_keep_the_general_path(loss: losses.Loss, y: np.ndarray) -> None:
    probs = _softmax(np.random.default_rng(3).normal(size=(4, 3)))
    assert loss.value_and_logits_grad(y, probs) is None


def test_a_subclass_that_redefines_the_loss_keeps_the_general_path() -> None:
    class Halved(losses.SparseCategoricalCrossentropy):
        def _terms(self, y_true: Any, y_pred: np.ndarray, need_grad: bool) -> Any:
            values, grad = super()._terms(y_true, y_pred, need_grad)
            return values / 2, None if grad is None else grad / 2

    probs = _softmax(np.random.default_rng(4).normal(size=(4, 3)))
    assert Halved().value_and_logits_grad(np.array([0, 1, 2, 1]), probs) is None
