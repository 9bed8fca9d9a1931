"""ModelCheckpoint against Keras 3's documented behaviour, with hand-computed file names."""

from __future__ import annotations

import errno
import os
import stat
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aiofit
from aiofit import layers
from aiofit.callbacks import LambdaCallback, ModelCheckpoint

from . import conftest
from .conftest import StubModel, assert_weights_equal, linear_data, make_model

X, Y = linear_data(10, seed=1)
fit_scripted = partial(conftest.fit_scripted, data=(X, Y))


def saved_weights(path: Path) -> list[np.ndarray]:
    return aiofit.load_model(path).get_weights()


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_filepath_is_formatted_with_the_1_based_epoch_and_the_logs(tmp_path: Path) -> None:
    model = make_model()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.3f}.keras")
    _, seen = fit_scripted(model, [0.5, 0.25, 0.125], ModelCheckpoint(pattern))
    assert names(tmp_path) == ["ckpt-01-0.500.keras", "ckpt-02-0.250.keras",
                               "ckpt-03-0.125.keras"]  # fmt: skip
    for epoch, name in enumerate(names(tmp_path)):
        assert_weights_equal(saved_weights(tmp_path / name), seen[epoch])


def test_save_best_only_keeps_the_best_model_in_one_file(tmp_path: Path) -> None:
    model = make_model()
    path = tmp_path / "best.keras"
    checkpoint = ModelCheckpoint(path, save_best_only=True)
    _, seen = fit_scripted(model, [1.0, 0.5, 0.7, 0.6], checkpoint)
    assert names(tmp_path) == ["best.keras"]
    assert_weights_equal(saved_weights(path), seen[1])
    assert checkpoint.best == 0.5


def test_save_best_only_with_a_pattern_saves_only_the_improving_epochs(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(tmp_path / "e{epoch}.keras", save_best_only=True)
    fit_scripted(make_model(), [1.0, 0.5, 0.7, 0.4, 0.4], checkpoint)
    assert names(tmp_path) == ["e1.keras", "e2.keras", "e4.keras"]  # 0.4 again is no gain


def test_auto_mode_maximizes_accuracy(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(tmp_path / "e{epoch}.keras", monitor="val_accuracy",
                                 save_best_only=True)  # fmt: skip
    fit_scripted(make_model(), [0.5, 0.4, 0.9, 0.8], checkpoint, key="val_accuracy")
    assert names(tmp_path) == ["e1.keras", "e3.keras"]


def test_initial_value_threshold_is_the_best_to_beat(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(tmp_path / "e{epoch}.keras", save_best_only=True,
                                 initial_value_threshold=0.6)  # fmt: skip
    fit_scripted(make_model(), [1.0, 0.7, 0.5, 0.55], checkpoint)
    assert names(tmp_path) == ["e3.keras"]


def test_the_best_is_reset_for_each_fit(tmp_path: Path) -> None:
    path = tmp_path / "best.keras"
    checkpoint = ModelCheckpoint(path, save_best_only=True, initial_value_threshold=2.0)
    fit_scripted(make_model(), [1.0, 0.1], checkpoint)
    model = make_model()
    _, seen = fit_scripted(model, [1.5, 1.8], checkpoint)  # worse than 0.1, better than 2.0
    assert_weights_equal(saved_weights(path), seen[0])


def test_save_freq_counts_batches_across_epochs(tmp_path: Path) -> None:
    # 10 samples in batches of 4: 3 batches per epoch, 6 in all. Every 2nd batch:
    # global batches 2, 4, 6 = (epoch 1, batch 2), (epoch 2, batch 1), (epoch 2, batch 3).
    model = make_model()
    after_batch: dict[tuple[int, int], list[np.ndarray]] = {}
    epoch = [0]

    def record(batch: int, logs: dict[str, Any]) -> None:
        after_batch[(epoch[0] + 1, batch + 1)] = model.get_weights()

    recorder = LambdaCallback(on_epoch_begin=lambda e, logs: epoch.__setitem__(0, e),
                              on_train_batch_end=record)  # fmt: skip
    pattern = str(tmp_path / "b-{epoch}-{batch}.npz")
    checkpoint = ModelCheckpoint(pattern, save_weights_only=True, save_freq=2)
    aiofit.run(aiofit.fit(model, X, Y, batch_size=4, epochs=2, verbose=0, shuffle=False,
                         callbacks=[recorder, checkpoint]))  # fmt: skip
    assert names(tmp_path) == ["b-1-2.npz", "b-2-1.npz", "b-2-3.npz"]
    for name in names(tmp_path):
        e, b = (int(part) for part in name[2:-4].split("-"))
        with np.load(tmp_path / name, allow_pickle=False) as data:
            stored = [data[f"weight_{i}"] for i in range(len(data.files))]
        assert_weights_equal(stored, after_batch[(e, b)])


def test_per_batch_file_names_can_use_the_batch_logs(tmp_path: Path) -> None:
    model = make_model()
    losses: list[float] = []
    recorder = LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(logs["loss"]))
    checkpoint = ModelCheckpoint(str(tmp_path / "{loss:.6f}.keras"), save_freq=3)
    aiofit.run(aiofit.fit(model, X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False,
                         callbacks=[recorder, checkpoint]))  # fmt: skip
    assert names(tmp_path) == [f"{losses[2]:.6f}.keras"]


def test_a_weights_only_checkpoint_loads_with_model_load_weights(tmp_path: Path) -> None:
    model = make_model()
    path = tmp_path / "w.bin"  # any name: no suffix is added
    _, seen = fit_scripted(model, [1.0, 2.0], ModelCheckpoint(path, save_weights_only=True))
    assert names(tmp_path) == ["w.bin"]
    fresh = make_model()
    assert not np.array_equal(fresh.get_weights()[0], seen[1][0])
    fresh.load_weights(path)
    assert_weights_equal(fresh.get_weights(), seen[1])
    with np.load(path, allow_pickle=False) as data:  # weights only: no model config
        assert data.files == ["weight_0", "weight_1"]


def test_weights_only_uses_the_models_own_save_weights(tmp_path: Path) -> None:
    calls: list[str] = []

    class OwnFormat(aiofit.Sequential):
        def save_weights(self, path: Any) -> None:
            calls.append(os.fspath(path))
            Path(path).write_text("my format")

    model = OwnFormat([layers.Input(shape=(3,)), layers.Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    pattern = str(tmp_path / "w{epoch}")
    fit_scripted(model, [1.0, 2.0], ModelCheckpoint(pattern, save_weights_only=True))
    assert calls == [str(tmp_path / "w1"), str(tmp_path / "w2")]
    assert (tmp_path / "w2").read_text() == "my format"


@pytest.mark.anyio
async def test_saves_on_every_event_loop(tmp_path: Path) -> None:
    model = make_model()
    checkpoint = ModelCheckpoint(tmp_path / "e{epoch}.keras", save_freq=2)
    await model.fit(X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[checkpoint])
    # Batches 2, 4 and 6 of 3 a epoch: the last save is after the last batch.
    assert names(tmp_path) == ["e1.keras", "e2.keras"]
    assert_weights_equal(saved_weights(tmp_path / "e2.keras"), model.get_weights())


def test_missing_monitor_with_save_best_only_warns_and_saves(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(tmp_path / "m.keras", monitor="val_auc", save_best_only=True)
    with pytest.warns(UserWarning, match=r"Can save best model only with `val_auc`"):
        fit_scripted(make_model(), [1.0], checkpoint)
    assert names(tmp_path) == ["m.keras"]


def test_a_missing_folder_is_created_before_training(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "one" / "m.keras"
    fit_scripted(make_model(), [1.0], ModelCheckpoint(path))
    assert path.is_file()


def test_a_key_missing_from_the_logs_is_a_clear_error(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(tmp_path / "{val_f1:.2f}.keras")
    with pytest.raises(KeyError, match=r"Failed to format this callback filepath.*val_f1"):
        fit_scripted(make_model(), [1.0], checkpoint)


def test_a_directory_as_filepath_is_refused_before_training(tmp_path: Path) -> None:
    model = make_model()
    before = model.get_weights()
    with pytest.raises(IsADirectoryError, match="non-directory filepath"):
        fit_scripted(model, [1.0], ModelCheckpoint(tmp_path))
    assert_weights_equal(model.get_weights(), before)


def test_a_model_without_save_needs_save_weights_only(tmp_path: Path) -> None:
    model = StubModel()  # no save
    with pytest.raises(TypeError, match=r"save_weights_only=True.*Received: model="):
        aiofit.run(aiofit.fit(model, X, Y, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "m")]))
    assert model.steps == 0
    aiofit.run(
        aiofit.fit(
            model,
            X,
            Y,
            epochs=2,
            verbose=0,
            callbacks=[ModelCheckpoint(tmp_path / "w", save_weights_only=True)],
        )
    )
    with np.load(tmp_path / "w", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["weight_0"], [2.0])


def test_a_read_only_folder_fails_before_training(read_only_dir: Path) -> None:
    model = StubModel()  # no save
    checkpoint = ModelCheckpoint(read_only_dir / "w.npz", save_weights_only=True)
    with pytest.raises(OSError, match=r"Cannot create files in this folder"):
        aiofit.run(aiofit.fit(model, X, Y, verbose=0, callbacks=[checkpoint]))
    assert model.steps == 0


def test_a_failed_save_raises_the_original_error_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model()
    path = tmp_path / "w.npz"
    real_fsync = os.fsync
    saves = [0]

    def fsync_fails_on_the_second_save(fd: int) -> None:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            saves[0] += 1
            if saves[0] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fails_on_the_second_save)
    epochs: list[list[np.ndarray]] = []
    recorder = LambdaCallback(on_epoch_end=lambda e, logs: epochs.append(model.get_weights()))
    checkpoint = ModelCheckpoint(path, save_weights_only=True)
    with pytest.raises(OSError, match="No space left") as info:
        fit_scripted(model, [1.0, 2.0, 3.0], recorder, checkpoint)
    assert info.value.filename == str(path)
    assert len(epochs) == 2
    assert names(tmp_path) == ["w.npz"]  # no temp file left
    fresh = make_model()
    fresh.load_weights(path)
    assert_weights_equal(fresh.get_weights(), epochs[0])


def test_verbose_reports_each_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.keras"
    fit_scripted(make_model(), [1.0, 2.0], ModelCheckpoint(path, verbose=1, save_best_only=True))
    out = capsys.readouterr().out
    assert f"Epoch 1: val_loss improved from None to 1.00000, saving model to {path}" in out
    assert "Epoch 2: val_loss did not improve from 1.00000" in out


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"save_freq": "batch"}, r"Received: save_freq='batch'"),
    ({"save_freq": 0}, r"Received: save_freq=0"),
    ({"mode": "up"}, r"Received: mode='up'"),
    ({"initial_value_threshold": "x"}, r"Received: initial_value_threshold='x'"),
])  # fmt: skip
def test_bad_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelCheckpoint("m.keras", **kwargs)


def test_a_folder_named_by_a_placeholder_is_created_at_save_time(tmp_path: Path) -> None:
    pattern = tmp_path / "run-{epoch}" / "m.keras"
    fit_scripted(make_model(), [1.0, 2.0], ModelCheckpoint(pattern))
    assert names(tmp_path) == ["run-1", "run-2"]
    assert (tmp_path / "run-2" / "m.keras").is_file()
