"""save/load_model: one pickle-free file, bit-identical state, atomic writes, clear errors."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiofit.nn import Sequential, layers, load_model, optimizers


def _model(seed: int = 0) -> Sequential:
    model = Sequential([layers.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                        layers.BatchNormalization(), layers.Dropout(0.25),
                        layers.Dense(3, activation="softmax")], seed=seed)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def _batches(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(42)
    return [(rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, 16))
            for _ in range(n)]


def _assert_same_weights(a: Sequential, b: Sequential) -> None:
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def test_round_trip_is_bit_identical(tmp_path: Path) -> None:
    model = _model()
    for x, y in _batches(3):
        model.train_on_batch(x, y)
    model.optimizer.learning_rate = 0.005  # as a scheduler callback would
    path = tmp_path / "weights.anything"
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["weights.anything"]  # no suffix, no temp left
    loaded = load_model(path)
    assert isinstance(loaded, Sequential)
    _assert_same_weights(model, loaded)
    assert loaded.name == model.name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.metrics_names == ["loss", "acc"]
    assert type(loaded.optimizer) is optimizers.Adam
    assert loaded.optimizer.learning_rate == 0.005
    assert loaded.optimizer.clipnorm == 1.0
    assert loaded.optimizer.iterations == 3
    state_a, state_b = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key])
    assert loaded.rng.bit_generator.state == model.rng.bit_generator.state


def test_loaded_model_continues_training_exactly(tmp_path: Path) -> None:
    batches = _batches(6)
    original = _model(seed=9)
    for x, y in batches[:3]:
        original.train_on_batch(x, y)
    original.save(tmp_path / "m")
    resumed = load_model(tmp_path / "m")
    for x, y in batches[3:]:  # dropout masks, BN statistics and Adam moments all continue
        logs_a = original.train_on_batch(x, y)
        logs_b = resumed.train_on_batch(x, y)
        assert logs_a == logs_b
    _assert_same_weights(original, resumed)
    np.testing.assert_array_equal(original.predict_on_batch(batches[0][0]),
                                  resumed.predict_on_batch(batches[0][0]))


def test_uncompiled_and_unbuilt_models_round_trip(tmp_path: Path) -> None:
    unbuilt = Sequential([layers.Dense(4, kernel_regularizer="l2"), layers.Dense(1)], seed=3,
                         dtype="float64")
    unbuilt.save(tmp_path / "unbuilt")
    loaded = load_model(tmp_path / "unbuilt")
    assert not loaded.built
    assert not loaded.compiled
    assert loaded.dtype == np.float64
    for m in (unbuilt, loaded):
        m.build((None, 5))
    _assert_same_weights(unbuilt, loaded)  # same seed and rng state -> same initial weights
    x = np.ones((2, 5))
    assert loaded.predict_on_batch(x).dtype == np.float64


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    path = tmp_path / "model.bin"
    first = _model(seed=1)
    first.save(path)
    old_bytes = path.read_bytes()

    def broken_savez(f: Any, **arrays: Any) -> None:
        f.write(b"partial garbage")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space left on device") as info:
        _model(seed=2).save(path)
    assert info.value.filename == str(path)  # the user's file, not the temp file
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["model.bin"]
    monkeypatch.undo()
    _assert_same_weights(first, load_model(path))


def test_file_holds_no_pickle_and_a_format_marker(tmp_path: Path) -> None:
    _model().save(tmp_path / "m")
    with np.load(tmp_path / "m", allow_pickle=False) as data:  # would raise on pickled data
        header = json.loads(bytes(data["__aiofit__"]))
        assert all(data[k].dtype != object for k in data.files)
    assert header["format"] == "aiofit.model"
    assert header["version"] == 1
    assert header["compile"]["metrics"] == ["acc"]


def _write_npz(path: Path, **arrays: Any) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _header_file(path: Path, header: dict[str, Any]) -> None:
    text = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    _write_npz(path, __aiofit__=text)


def _corrupt_cases(tmp_path: Path) -> list[tuple[Path, str]]:
    good = tmp_path / "good"
    _model().save(good)
    cases = []
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    cases.append((empty, "corrupt, truncated or of another format"))
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a model\n" * 10)
    cases.append((text, "corrupt, truncated or of another format"))
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases.append((truncated, "corrupt, truncated or of another format"))
    foreign = tmp_path / "foreign.npz"
    _write_npz(foreign, a=np.arange(3))
    cases.append((foreign, "not an aiofit model file"))
    single = tmp_path / "single.npy"
    np.save(single, np.arange(3))
    cases.append((single, "single numpy array"))
    marker = tmp_path / "marker"
    _header_file(marker, {"format": "something-else"})
    cases.append((marker, "format marker missing"))
    newer = tmp_path / "newer"
    _header_file(newer, {"format": "aiofit.model", "version": 99, "class_name": "Sequential"})
    cases.append((newer, "version 99 is newer"))
    broken = tmp_path / "broken-config"
    _header_file(broken, {"format": "aiofit.model", "version": 1, "class_name": "Sequential"})
    cases.append((broken, "corrupt, truncated or of another format"))
    return cases


def test_corrupt_truncated_and_foreign_files_raise_value_error(tmp_path: Path) -> None:
    for path, problem in _corrupt_cases(tmp_path):
        with pytest.raises(ValueError, match=problem) as info:
            load_model(path)
        assert repr(str(path)) in str(info.value), path


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope")


def test_metric_objects_round_trip_and_custom_ones_are_refused(tmp_path: Path) -> None:
    from aiofit.nn import metrics

    model = _model()
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[metrics.SparseCategoricalAccuracy(name="sca")])
    model.save(tmp_path / "builtin")
    assert load_model(tmp_path / "builtin").metrics_names == ["loss", "sca"]

    def hits(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return (y_pred.argmax(axis=1) == y_true).astype(float)

    model.compile(loss="sparse_categorical_crossentropy", metrics=[hits])
    with pytest.raises(ValueError, match="custom metric"):
        model.save(tmp_path / "custom")
    assert not (tmp_path / "custom").exists()


def test_a_layer_with_its_own_seed_resumes_its_own_generator(tmp_path: Path) -> None:
    def make() -> Sequential:
        model = Sequential([layers.Input(shape=(6,)), layers.Dense(8),
                            layers.Dropout(0.5, seed=123), layers.Dense(3, activation="softmax")],
                           seed=0)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return model

    batches = _batches(4)
    original = make()
    for x, y in batches[:2]:
        original.train_on_batch(x, y)
    original.save(tmp_path / "m")
    resumed = load_model(tmp_path / "m")
    for x, y in batches[2:]:
        assert original.train_on_batch(x, y) == resumed.train_on_batch(x, y)
    _assert_same_weights(original, resumed)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    hidden=st.integers(1, 6),
    activation=st.sampled_from(["relu", "tanh", "gelu", "linear"]),
    extra=st.sampled_from(["none", "bn", "dropout"]),
    optimizer=st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "adagrad"]),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_any_model_resumes_bit_identically(
    tmp_path: Path, hidden: int, activation: str, extra: str, optimizer: str, seed: int,
    dtype: str,
) -> None:
    def make() -> Sequential:
        stack: list[Any] = [layers.Input(shape=(6,)),
                            layers.Dense(hidden, activation=activation)]
        stack += {"none": [], "bn": [layers.BatchNormalization()],
                  "dropout": [layers.Dropout(0.3)]}[extra]
        stack.append(layers.Dense(2))
        model = Sequential(stack, seed=seed, dtype=dtype)
        model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
        return model

    rng = np.random.default_rng(seed)
    batches = [(rng.normal(size=(8, 6)), rng.normal(size=(8, 2))) for _ in range(4)]
    original = make()
    for x, y in batches[:2]:
        original.train_on_batch(x, y)
    path = tmp_path / f"m-{seed}-{optimizer}"
    original.save(path)
    resumed = load_model(path)
    _assert_same_weights(original, resumed)
    for x, y in batches[2:]:
        assert original.train_on_batch(x, y) == resumed.train_on_batch(x, y)
    _assert_same_weights(original, resumed)
