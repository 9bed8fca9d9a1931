"""CSVLogger: Keras's file, byte for byte, written atomically every epoch."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aiofit
from aiofit.callbacks import Callback, CSVLogger, LambdaCallback

from .conftest import StubModel

X = np.zeros((4, 2))
Y = np.zeros(4)


def fit_scripted(script: list[dict[str, Any]], *callbacks: Callback, model: Any = None) -> Any:
    """Fit one batch per epoch; epoch ``e``'s logs are replaced by ``script[e]``."""
    model = model or StubModel()

    def inject(epoch: int, logs: dict[str, Any]) -> None:
        logs.clear()
        logs.update(script[epoch])

    aiofit.run(
        aiofit.fit(model, X, Y, epochs=len(script), verbose=0,
                   callbacks=[LambdaCallback(on_epoch_end=inject), *callbacks])
    )  # fmt: skip
    return model


def test_writes_keras_csv_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    fit_scripted(
        [{"val_loss": 0.25, "loss": 0.5, "accuracy": 0.75, "val_accuracy": 0.5},
         {"val_loss": 0.0625, "loss": 0.125, "accuracy": 1.0, "val_accuracy": 0.875}],
        CSVLogger(path),
    )  # fmt: skip
    assert path.read_bytes() == (
        b"epoch,accuracy,loss,val_accuracy,val_loss\r\n"
        b"0,0.75,0.5,0.5,0.25\r\n"
        b"1,1.0,0.125,0.875,0.0625\r\n"
    )


def test_a_real_fit_logs_the_history(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    model = aiofit.Sequential([aiofit.layers.Input(shape=(2,)), aiofit.layers.Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(16, 2))
    y = x.sum(axis=1)
    history = aiofit.run(model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y),
                                   callbacks=[CSVLogger(path, separator=";")]))  # fmt: skip
    h = history.history
    rows = [f"{e};{h['loss'][e]!r};{h['mae'][e]!r};{h['val_loss'][e]!r};{h['val_mae'][e]!r}"
            for e in range(2)]  # fmt: skip
    expected = "\r\n".join(["epoch;loss;mae;val_loss;val_mae", *rows, ""])
    assert path.read_bytes().decode() == expected


def test_later_keys_are_dropped_and_missing_ones_written_na(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    fit_scripted([{"loss": 1.0, "b": 2.0}, {"loss": 0.5, "c": 9.0}], CSVLogger(path))
    assert path.read_bytes() == b"epoch,b,loss\r\n0,2.0,1.0\r\n1,NA,0.5\r\n"


def test_val_names_the_model_expects_get_a_column_from_the_start(tmp_path: Path) -> None:
    # As Keras: with validation every other epoch, the first row lacks val_ keys.
    path = tmp_path / "log.csv"
    model = StubModel(metrics_names=["loss", "val_loss"])
    fit_scripted([{"loss": 1.0}, {"loss": 0.5, "val_loss": 0.25}], CSVLogger(path), model=model)
    assert path.read_bytes() == b"epoch,loss,val_loss\r\n0,1.0,NA\r\n1,0.5,0.25\r\n"


def test_values_are_rendered_as_keras_does(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    fit_scripted(
        [{"f64": np.float64(0.5), "f32": np.float32(0.25), "name": "adam",
          "vec": np.array([1, 2]), "zero_d": np.array(3.5)}],
        CSVLogger(path),
    )  # fmt: skip
    assert path.read_bytes() == (
        b'epoch,f32,f64,name,vec,zero_d\r\n0,0.25,0.5,adam,"""[1, 2]""",3.5\r\n'
    )


def test_each_epoch_is_on_disk_when_the_next_callback_runs(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    seen: list[bytes] = []
    after = LambdaCallback(on_epoch_end=lambda e, logs: seen.append(path.read_bytes()))
    fit_scripted([{"loss": 1.0}, {"loss": 0.5}], CSVLogger(path), after)
    assert seen == [b"epoch,loss\r\n0,1.0\r\n", b"epoch,loss\r\n0,1.0\r\n1,0.5\r\n"]


def test_overwrites_an_existing_file_emptying_it_at_train_begin(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"epoch,old\r\n0,1\r\n")
    at_begin: list[bytes] = []
    probe = LambdaCallback(on_train_begin=lambda logs: at_begin.append(path.read_bytes()))
    fit_scripted([{"loss": 0.5}], CSVLogger(path), probe)
    assert at_begin == [b""]
    assert path.read_bytes() == b"epoch,loss\r\n0,0.5\r\n"


def test_append_keeps_the_rows_and_columns_of_the_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"epoch;loss;custom\r\n0;2.0;7\r\n")
    logger = CSVLogger(path, separator=";", append=True)
    fit_scripted([{"loss": 0.5, "other": 1.0}, {"loss": 0.25, "custom": 8}], logger)
    assert path.read_bytes() == b"epoch;loss;custom\r\n0;2.0;7\r\n0;0.5;NA\r\n1;0.25;8\r\n"


@pytest.mark.parametrize("existing", [None, b""])
def test_append_to_a_missing_or_empty_file_writes_the_header(
    tmp_path: Path, existing: bytes | None
) -> None:
    path = tmp_path / "log.csv"
    if existing is not None:
        path.write_bytes(existing)
    fit_scripted([{"loss": 0.5}], CSVLogger(path, append=True))
    assert path.read_bytes() == b"epoch,loss\r\n0,0.5\r\n"


def test_one_instance_serves_two_fits(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    fit_scripted([{"loss": 1.0, "a": 1.0}], logger)
    fit_scripted([{"loss": 0.5}, {"loss": 0.25}], logger)
    assert path.read_bytes() == b"epoch,loss\r\n0,0.5\r\n1,0.25\r\n"
    appender = CSVLogger(path, append=True)
    fit_scripted([{"loss": 0.125}], appender)
    fit_scripted([{"loss": 0.0625}], appender)
    assert path.read_bytes() == b"epoch,loss\r\n0,0.5\r\n1,0.25\r\n0,0.125\r\n0,0.0625\r\n"


@pytest.mark.anyio
async def test_writes_from_every_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    history = await aiofit.fit(StubModel(), X, Y, epochs=2, verbose=0, callbacks=[CSVLogger(path)])
    assert history.history["loss"] == [1.0, 1.0]
    assert path.read_bytes() == b"epoch,loss\r\n0,1.0\r\n1,1.0\r\n"


def test_a_missing_folder_fails_before_training(tmp_path: Path) -> None:
    model = StubModel()
    logger = CSVLogger(tmp_path / "nowhere" / "log.csv")
    with pytest.raises(FileNotFoundError, match=r"does not exist.*Received: path='.*nowhere'"):
        aiofit.run(aiofit.fit(model, X, Y, verbose=0, callbacks=[logger]))
    assert model.steps == 0


def test_a_failed_write_keeps_the_last_complete_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.csv"
    real_replace = os.replace
    calls = [0]

    def replace(src: str, dst: str) -> None:
        calls[0] += 1
        if calls[0] == 3:  # train begin, epoch 0, then epoch 1 fails
            raise OSError(errno.EIO, "Input/output error", src, None, dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="Input/output error") as info:
        fit_scripted([{"loss": 1.0}, {"loss": 0.5}], CSVLogger(path))
    assert info.value.filename2 == str(path)
    assert path.read_bytes() == b"epoch,loss\r\n0,1.0\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_a_bad_separator_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Received: separator='::'"):
        CSVLogger("log.csv", separator="::")
