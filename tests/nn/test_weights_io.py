"""Model.save_weights / load_weights: weights only, one no-pickle file, atomic, checked shapes."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiofit.nn import Sequential, layers


def _model(hidden: int = 4, seed: int = 0, extra: bool = False) -> Sequential:
    stack: list[Any] = [layers.Input(shape=(3,)), layers.Dense(hidden, activation="relu"),
                        layers.BatchNormalization(), layers.Dense(2)]
    if extra:
        stack.append(layers.Dense(2))
    model = Sequential(stack, seed=seed)
    model.compile(optimizer="adam", loss="mse")
    return model


def _trained(seed: int = 0) -> Sequential:
    model = _model(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        model.train_on_batch(rng.normal(size=(8, 3)), rng.normal(size=(8, 2)))
    return model


def _assert_same(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(a, e)


def test_weights_round_trip_bit_identically_into_another_model(tmp_path: Path) -> None:
    source = _trained()
    path = tmp_path / "weights.anything"
    source.save_weights(path)
    assert os.listdir(tmp_path) == ["weights.anything"]  # no suffix added, no temp left
    target = _model(seed=1)
    assert not np.array_equal(target.get_weights()[0], source.get_weights()[0])
    target.load_weights(path)
    _assert_same(target.get_weights(), source.get_weights())
    x = np.linspace(-1, 1, 12).reshape(4, 3)
    np.testing.assert_array_equal(target.predict_on_batch(x), source.predict_on_batch(x))


def test_the_file_is_a_plain_npz_of_get_weights_without_pickle(tmp_path: Path) -> None:
    source = _trained()
    source.save_weights(tmp_path / "w")
    with np.load(tmp_path / "w", allow_pickle=False) as data:  # would refuse pickled data
        assert sorted(data.files) == [f"weight_{i}" for i in range(8)]
        _assert_same([data[f"weight_{i}"] for i in range(8)], source.get_weights())


def test_load_weights_reads_the_weights_of_a_whole_model_file(tmp_path: Path) -> None:
    source = _trained()
    source.save(tmp_path / "model")
    target = _model(seed=5)
    target.load_weights(tmp_path / "model")
    _assert_same(target.get_weights(), source.get_weights())


def test_save_weights_is_atomic_when_writing_fails(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w"
    first = _trained(seed=1)
    first.save_weights(path)
    old = path.read_bytes()

    def broken_savez(f: Any, **arrays: Any) -> None:
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space left on device") as info:
        _trained(seed=2).save_weights(path)
    monkeypatch.undo()
    assert info.value.filename == str(path)  # the user's file, not the temp file
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["w"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_rewriting_keeps_the_files_permissions(tmp_path: Path) -> None:
    path = tmp_path / "w"
    model = _trained()
    model.save_weights(path)
    path.chmod(0o640)
    model.save_weights(path)
    model.save(path)  # the whole-model writer shares the same atomic writer
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_wrong_shape_names_the_path_and_the_first_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "w"
    _model(hidden=4).save_weights(path)
    target = _model(hidden=5)
    before = target.get_weights()
    kernel = re.escape(f"{target.layers[0].name}/kernel")
    with pytest.raises(ValueError, match=rf"{re.escape(repr(str(path)))}.*{kernel}.*"
                                         r"\(3, 5\)\. Received: shape \(3, 4\)"):
        target.load_weights(path)
    _assert_same(target.get_weights(), before)


def test_a_different_weight_count_names_the_path_and_both_counts(tmp_path: Path) -> None:
    path = tmp_path / "w"
    _model().save_weights(path)
    target = _model(extra=True)
    before = target.get_weights()
    with pytest.raises(ValueError, match=rf"{re.escape(repr(str(path)))}.*list of 8 weights, "
                                         r"but the model has 10"):
        target.load_weights(path)
    _assert_same(target.get_weights(), before)
    _model(extra=True).save_weights(path)
    with pytest.raises(ValueError, match=r"list of 10 weights, but the model has 8"):
        _model().load_weights(path)


def test_an_unbuilt_model_is_refused_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "w"
    _model().save_weights(path)
    with pytest.raises(ValueError, match=rf"{re.escape(repr(str(path)))}.*not built"):
        Sequential([layers.Dense(4)]).load_weights(path)


def _bad_files(tmp_path: Path) -> list[tuple[Path, str]]:
    good = tmp_path / "good"
    _trained().save_weights(good)
    empty, text, truncated = tmp_path / "empty", tmp_path / "t.txt", tmp_path / "truncated"
    empty.write_bytes(b"")
    text.write_text("not weights\n" * 20)
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign, single = tmp_path / "foreign.npz", tmp_path / "single.npy"
    with open(foreign, "wb") as f:
        np.savez(f, a=np.arange(3), weight_0=np.zeros(2))
    np.save(single, np.arange(3))
    corrupt = "corrupt, truncated or of another format"
    return [(empty, corrupt), (text, corrupt), (truncated, corrupt),
            (foreign, "not an aiofit weights file"), (single, "single numpy array")]


def test_corrupt_and_foreign_files_raise_value_error_naming_the_path(tmp_path: Path) -> None:
    target = _model()
    before = target.get_weights()
    for path, problem in _bad_files(tmp_path):
        with pytest.raises(ValueError, match=problem) as info:
            target.load_weights(path)
        assert repr(str(path)) in str(info.value), path
    _assert_same(target.get_weights(), before)


def test_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _model().load_weights(tmp_path / "nope")


def test_a_model_without_weights_round_trips_an_empty_file(tmp_path: Path) -> None:
    model = Sequential([layers.Input(shape=(2, 3)), layers.Flatten()])
    model.save_weights(tmp_path / "w")
    model.load_weights(tmp_path / "w")
    assert model.get_weights() == []
