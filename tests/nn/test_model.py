"""Sequential's batch API against hand-computed steps, finite differences and Keras rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiofit.nn import Sequential, layers, optimizers


def _linear(dtype: str = "float64", **dense: Any) -> Sequential:
    model = Sequential([layers.Input(shape=(2,)), layers.Dense(1, **dense)], dtype=dtype, seed=0)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    return model


def _classifier(seed: int = 0, dropout: float = 0.0, dtype: str = "float32") -> Sequential:
    stack: list[Any] = [layers.Input(shape=(4,)), layers.Dense(5, activation="tanh")]
    if dropout:
        stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(3, activation="softmax"))
    return Sequential(stack, seed=seed, dtype=dtype)


def _data(n: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 3, n)


# ---------------------------------------------------------------- one step by hand


def test_sgd_step_matches_a_hand_computed_update() -> None:
    model = _linear(dtype="float32", use_bias=False)
    model.set_weights([np.array([[0.5], [-1.0]])])
    # pred = 0.5*1 - 1*2 = -1.5; err = -2.5; loss = 6.25; dL/dW = 2*err*x = [-5, -10]
    logs = model.train_on_batch(np.array([[1.0, 2.0]]), np.array([[1.0]]))
    assert logs == {"loss": 6.25}
    np.testing.assert_array_equal(model.get_weights()[0], [[1.0], [0.0]])  # W - 0.1 * dW


def test_batch_step_matches_the_closed_form_gradient() -> None:
    model = _linear()
    w, b = np.array([[0.3], [-0.2]]), np.array([0.1])
    model.set_weights([w, b])
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]])
    y = np.array([1.0, -2.0, 0.5])  # shape (N,) for an output of (N, 1), as Keras allows
    err = (x @ w + b)[:, 0] - y
    logs = model.train_on_batch(x, y)
    assert logs["loss"] == pytest.approx(np.mean(err**2), rel=1e-12)
    d_pred = 2 * err / 3
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w, w - 0.1 * (x.T @ d_pred)[:, None], rtol=1e-12)
    np.testing.assert_allclose(new_b, b - 0.1 * d_pred.sum(), rtol=1e-12)


def test_sample_weight_scales_loss_and_gradient_as_keras() -> None:
    model = _linear(use_bias=False)
    model.set_weights([np.array([[1.0], [0.0]])])
    x, y = np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([[0.0], [0.0]])
    # errors 1 and 2; Keras: sum(w * loss) / N = (3*1 + 0.5*4) / 2 = 2.5
    logs = model.train_on_batch(x, y, sample_weight=np.array([3.0, 0.5]))
    assert logs["loss"] == pytest.approx(2.5)
    # dL/dW0 = (3 * 2*1*1 + 0.5 * 2*2*2) / 2 = 5; W0 = 1 - 0.1*5
    np.testing.assert_allclose(model.get_weights()[0], [[0.5], [0.0]])


def test_class_weight_equals_the_matching_sample_weight() -> None:
    x, y = _data()
    with_cw, with_sw = _classifier(), _classifier()
    for model in (with_cw, with_sw):
        model.compile(optimizer=optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    probs = with_cw.predict_on_batch(x).astype(np.float64)
    table = {0: 2.0, 1: 0.5, 2: 1.0}
    weights = np.array([table[int(c)] for c in y])
    expected = np.sum(weights * -np.log(probs[np.arange(len(y)), y])) / len(y)
    logs = with_cw.train_on_batch(x, y, class_weight={0: 2.0, 1: 0.5})  # 2 defaults to 1
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    with_sw.train_on_batch(x, y, sample_weight=weights)
    for a, b in zip(with_cw.get_weights(), with_sw.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_logs_hold_loss_then_metrics_in_order_before_the_update() -> None:
    x, y = _data(16)
    model = _classifier()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["acc", "sparse_top_k_categorical_accuracy"])
    probs = model.predict_on_batch(x).astype(np.float64)
    logs = model.train_on_batch(x, y)
    assert list(logs) == ["loss", "acc", "sparse_top_k_categorical_accuracy"]
    assert model.metrics_names == list(logs)
    assert logs["loss"] == pytest.approx(-np.mean(np.log(probs[np.arange(16), y])), rel=1e-5)
    assert logs["acc"] == pytest.approx(np.mean(probs.argmax(axis=1) == y))
    assert logs["sparse_top_k_categorical_accuracy"] == 1.0  # k=5 >= 3 classes
    after = model.test_on_batch(x, y)
    assert after["loss"] != logs["loss"]  # the step changed the weights


def test_loss_includes_the_regularisation_penalty() -> None:
    model = _linear(kernel_regularizer="l2", use_bias=False)  # Keras default l2 = 0.01
    w = np.array([[2.0], [-1.0]])
    model.set_weights([w])
    x, y = np.array([[1.0, 1.0]]), np.array([[0.0]])
    # data loss (2 - 1)^2 = 1, penalty 0.01 * (4 + 1) = 0.05
    assert model.test_on_batch(x, y)["loss"] == pytest.approx(1.05)
    assert model.train_on_batch(x, y)["loss"] == pytest.approx(1.05)
    grad = 2 * 1.0 * x.T + 0.02 * w
    np.testing.assert_allclose(model.get_weights()[0], w - 0.1 * grad, rtol=1e-12)


def test_gradients_match_finite_differences() -> None:
    x, y = _data(6)
    sw = np.linspace(0.5, 2.0, 6)
    model = _classifier(dtype="float64")
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="categorical_crossentropy")
    onehot = np.eye(3)[y]
    before = model.get_weights()
    model.train_on_batch(x, onehot, sample_weight=sw)
    analytic = [b - a for b, a in zip(before, model.get_weights(), strict=True)]  # lr = 1
    eps = 1e-6
    for k, w in enumerate(before):
        for idx in np.ndindex(w.shape):
            losses = []
            for sign in (1, -1):
                shifted = [v.copy() for v in before]
                shifted[k][idx] += sign * eps
                model.set_weights(shifted)
                losses.append(model.test_on_batch(x, onehot, sample_weight=sw)["loss"])
            numeric = (losses[0] - losses[1]) / (2 * eps)
            assert analytic[k][idx] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_a_model_without_layers_reports_its_loss_and_changes_nothing() -> None:
    model = Sequential([layers.Input(shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    assert model.train_on_batch(np.ones((2, 3)), np.zeros((2, 3))) == {"loss": 1.0}
    assert model.get_weights() == []


def test_first_trainable_layer_skips_its_input_gradient() -> None:
    model = Sequential([layers.Input(shape=(4,)), layers.Flatten(),
                        layers.Dense(3, activation="relu"), layers.Dense(2)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    calls: list[tuple[str, bool]] = []
    for layer in model.layers:
        original = layer.backward

        def spy(dY: Any, need_dx: bool = True, _o: Any = original, _n: str = layer.name) -> Any:
            calls.append((_n, need_dx))
            return _o(dY, need_dx)

        layer.backward = spy  # type: ignore[method-assign]
    model.train_on_batch(np.ones((2, 4)), np.zeros((2, 2)))
    names = [layer.name for layer in model.layers]
    assert calls == [(names[2], True), (names[1], False)]  # Flatten never runs backward


# ---------------------------------------------------------------- build and weights


def test_weights_live_in_one_flat_buffer_after_build() -> None:
    model = _classifier()
    flat = model._flat_params
    assert flat.ndim == 1
    assert flat.size == model.count_params() == 4 * 5 + 5 + 5 * 3 + 3
    for layer in model.layers:
        for p in layer.params:
            assert p.base is flat
    model.layers[0].params[1][:] = 7.0
    assert np.count_nonzero(flat == 7.0) == 5


def test_deferred_build_matches_a_declared_input() -> None:
    x, y = _data()
    declared = _classifier(seed=3)
    deferred = Sequential([layers.Dense(5, activation="tanh"),
                           layers.Dense(3, activation="softmax")], seed=3)
    assert not deferred.built
    assert deferred.get_weights() == []
    for model in (declared, deferred):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.train_on_batch(x, y)
    assert deferred.built
    assert deferred.input_shape == (4,)
    for a, b in zip(declared.get_weights(), deferred.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_gives_identical_training_and_another_seed_differs() -> None:
    x, y = _data(32)

    def run(seed: int) -> list[np.ndarray]:
        model = _classifier(seed=seed, dropout=0.5)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        for _ in range(5):
            model.train_on_batch(x, y)
        return model.get_weights()

    first, again, other = run(11), run(11), run(12)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_get_weights_returns_copies_in_keras_order() -> None:
    model = _classifier()
    kernel, bias, kernel2, bias2 = model.get_weights()
    assert (kernel.shape, bias.shape, kernel2.shape, bias2.shape) == ((4, 5), (5,), (5, 3), (3,))
    kernel[...] = 99.0
    assert not (model.get_weights()[0] == 99.0).any()


def test_set_weights_copies_into_the_existing_buffers() -> None:
    model = _classifier()
    views = [p for layer in model.layers for p in layer.params]
    new = [np.full(w.shape, i + 1.0) for i, w in enumerate(model.get_weights())]
    model.set_weights(new)
    for view, value in zip(views, new, strict=True):
        np.testing.assert_array_equal(view, value)  # the same view objects see the values
    for got, value in zip(model.get_weights(), new, strict=True):
        np.testing.assert_array_equal(got, value)


def test_set_weights_rejects_a_wrong_count() -> None:
    model = _classifier()
    with pytest.raises(ValueError, match=r"list of 3 weights, but the model has 4"):
        model.set_weights(model.get_weights()[:3])


def test_set_weights_names_the_weight_with_a_wrong_shape_and_changes_nothing() -> None:
    model = _classifier()
    before = model.get_weights()
    bad = [np.zeros_like(before[0]), before[1], before[2].T, before[3]]
    name = model.layers[1].name
    with pytest.raises(ValueError, match=rf"{name}/kernel.*\(5, 3\).*Received: shape \(3, 5\)"):
        model.set_weights(bad)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the valid first entry was not copied either


def test_set_weights_and_count_params_need_a_built_model() -> None:
    model = Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        model.set_weights([])
    with pytest.raises(ValueError, match="not built"):
        model.count_params()


def test_predict_on_batch_returns_a_fresh_array() -> None:
    model = _classifier()
    x, _ = _data()
    first = model.predict_on_batch(x)
    second = model.predict_on_batch(x)
    assert not np.shares_memory(first, second)
    first[...] = 0.0
    np.testing.assert_array_equal(model.predict_on_batch(x), second)
    np.testing.assert_allclose(second.sum(axis=1), 1.0, rtol=1e-6)  # softmax rows


# ---------------------------------------------------------------- Sequential API


def test_layers_exclude_the_input_and_add_extends_a_built_model() -> None:
    model = Sequential([layers.Input(shape=(4,)), layers.Dense(5)], seed=0)
    kernel = model.get_weights()[0]
    model.add(layers.Dense(2))
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    assert model.output_shape == (2,)
    np.testing.assert_array_equal(model.get_weights()[0], kernel)
    assert model.count_params() == 4 * 5 + 5 + 5 * 2 + 2


def test_add_rejects_non_layers_late_inputs_and_duplicate_names() -> None:
    model = Sequential([layers.Dense(2, name="d")])
    with pytest.raises(TypeError, match="Received: 'relu'"):
        model.add("relu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Input can only be the first"):
        model.add(layers.Input(shape=(3,)))
    with pytest.raises(ValueError, match="unique names"):
        model.add(layers.Dense(3, name="d"))


@pytest.mark.parametrize("bad", [layers.Dense(2), "dense", 3])
def test_sequential_wants_a_list_of_layers(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"list of layers.*Received: layers="):
        Sequential(bad)


def test_compile_checks_its_arguments() -> None:
    model = _classifier()
    with pytest.raises(TypeError, match="metrics='accuracy'"):
        model.compile(loss="mse", metrics="accuracy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile(loss="hinge-ish")
    model.compile(loss="mse")
    assert type(model.optimizer).__name__ == "RMSprop"  # Keras's default optimizer
    assert model.metrics_names == ["loss"]
    assert model.stop_training is False


def test_batch_methods_need_compile_and_a_loss() -> None:
    model = _classifier()
    x, y = _data()
    for method in (model.train_on_batch, model.test_on_batch):
        with pytest.raises(RuntimeError, match=r"You must call compile\(\) before"):
            method(x, y)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="loss"):
        model.train_on_batch(x, y)
    assert model.predict_on_batch(x).shape == (8, 3)  # predicting needs no compile


def test_fit_evaluate_predict_return_the_engine_coroutines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiofit.engine

    calls: dict[str, Any] = {}

    def recorder(name: str) -> Any:
        def fake(*args: Any, **kwargs: Any) -> str:
            calls[name] = (args, kwargs)
            return f"{name}-result"
        return fake

    for name in ("fit", "evaluate", "predict"):
        monkeypatch.setattr(aiofit.engine, name, recorder(name), raising=False)
    model = _classifier()
    x, y = _data()
    assert model.fit(x, y, epochs=3, batch_size=4) == "fit-result"
    assert model.evaluate(x, y, steps=2) == "evaluate-result"
    assert model.predict(x, batch_size=5) == "predict-result"
    args, kwargs = calls["fit"]
    assert args[0] is model
    assert (kwargs["epochs"], kwargs["batch_size"], kwargs["shuffle"]) == (3, 4, True)
    assert calls["evaluate"][1]["steps"] == 2
    assert calls["predict"][1]["batch_size"] == 5


def test_summary_counts_a_784_512_256_10_mlp() -> None:
    model = Sequential([layers.Input(shape=(784,)), layers.Dense(512, activation="relu"),
                        layers.Dense(256, activation="relu"),
                        layers.Dense(10, activation="softmax")], name="mlp")
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    # (784*512 + 512) + (512*256 + 256) + (256*10 + 10) = 535,818
    assert model.count_params() == 535_818
    assert 'Model: "mlp"' in text
    assert "Total params: 535,818" in text
    assert "Trainable params: 535,818" in text
    assert "Non-trainable params: 0" in text
    assert "401,920" in text  # 784*512 + 512
    assert "(None, 256)" in text


def test_summary_separates_non_trainable_weights() -> None:
    model = Sequential([layers.Input(shape=(3,)), layers.Dense(4),
                        layers.BatchNormalization()])
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    # Dense 3*4+4 = 16; BN gamma+beta 8 trainable, moving mean+variance 8 not
    assert "Total params: 32" in text
    assert "Trainable params: 24" in text
    assert "Non-trainable params: 8" in text
    unbuilt: list[str] = []
    Sequential([layers.Dense(4)]).summary(print_fn=unbuilt.append)
    assert "unbuilt" in "\n".join(unbuilt)


def test_build_is_idempotent_and_refuses_another_shape() -> None:
    model = _classifier()
    weights = model.get_weights()
    model.build((None, 4))
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"already built.*Received: input_shape=\(None, 5\)"):
        model.build((None, 5))


def test_set_weights_names_batch_normalization_statistics() -> None:
    model = Sequential([layers.Input(shape=(3,)), layers.BatchNormalization(name="bn")])
    bad = model.get_weights()
    bad[3] = np.ones(4)
    with pytest.raises(ValueError, match="bn/moving_variance"):
        model.set_weights(bad)


@pytest.mark.parametrize(("index", "label"), [(0, "bn/beta"), (1, "bn/moving_mean")])
def test_set_weights_names_the_weights_of_a_layer_without_scale(index: int, label: str) -> None:
    # BatchNormalization(scale=False) has no gamma: its names are set per instance.
    model = Sequential([layers.Input(shape=(3,)), layers.BatchNormalization(scale=False,
                                                                            name="bn")])
    bad = model.get_weights()
    assert len(bad) == 3  # beta, moving_mean, moving_variance
    bad[index] = np.ones(5)
    with pytest.raises(ValueError, match=rf"Weight {label} of layer 'bn' expects .*\(3,\)"):
        model.set_weights(bad)


def test_summary_of_a_compiled_model_counts_optimizer_variables_as_keras_3() -> None:
    model = Sequential([layers.Input(shape=(2,)), layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    # Adam: momentum and velocity per weight (2 * 9) plus iterations and learning rate
    assert " Optimizer params: 20 (80.00 B)" in lines
    assert " Trainable params: 9 (36.00 B)" in lines
    assert " Total params: 29 (116.00 B)" in lines  # Keras 3 adds the optimizer's in
