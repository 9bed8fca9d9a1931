"""PlotHistory: a valid PNG of the curves after every epoch, written atomically."""

from __future__ import annotations

import math
import os
import sys
import threading
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from aiofit.callbacks import LambdaCallback, PlotHistory
from aiofit.callbacks import plot_history as plot_module
from aiofit.callbacks.plot_history import panel_names, render

from .conftest import small_model, sum_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def lines(ax: Any) -> dict[str, tuple[list[float], list[float]]]:
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in ax.get_lines()
    }


@pytest.mark.anyio
async def test_fit_writes_a_png_with_one_panel_per_metric(tmp_path: Path) -> None:
    x, y = sum_data()
    path = tmp_path / "curves.png"
    history = await small_model().fit(
        x, y, epochs=3, batch_size=8, validation_data=(x, y), verbose=0,
        callbacks=[PlotHistory(path, dpi=50)],
    )  # fmt: skip
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    # Two panels (loss, mae) side by side: 2 x 4.5 in by 3.4 in, at 50 dpi.
    assert image.shape == (170, 450, 4)
    assert image[..., :3].std() > 0  # something is drawn
    assert sorted(history.history) == ["loss", "mae", "val_loss", "val_mae"]


def test_render_puts_train_and_validation_on_the_same_axes() -> None:
    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.5, 0.75, 0.5], "acc": [0.1, 0.2, 0.4]}
    figure = render(history)
    assert [ax.get_title() for ax in figure.axes] == ["loss", "acc"]
    assert lines(figure.axes[0]) == {
        "train": ([1, 2, 3], [1.0, 0.5, 0.25]),
        "validation": ([1, 2, 3], [1.5, 0.75, 0.5]),
    }
    assert lines(figure.axes[1]) == {"train": ([1, 2, 3], [0.1, 0.2, 0.4])}
    assert figure.axes[0].get_xlabel() == "epoch"


def test_render_grid_metrics_and_epochs() -> None:
    history = {name: [1.0, 2.0] for name in ["a", "b", "c", "d", "val_e"]}
    assert panel_names(history) == ["a", "b", "c", "d", "val_e"]
    figure = render(history)
    assert len(figure.axes) == 5
    # Three columns: two rows of 3.4 in.
    assert tuple(figure.get_size_inches()) == (13.5, 6.8)
    only = render(history, metrics=["b"], epochs=[5, 6])
    assert [ax.get_title() for ax in only.axes] == ["b"]
    assert lines(only.axes[0]) == {"train": ([5, 6], [1.0, 2.0])}


def test_render_rejects_series_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="Received: 1 values for 'val_loss'"):
        render({"loss": [1.0, 0.5], "val_loss": [0.7]})


@pytest.mark.anyio
async def test_epochs_without_validation_are_gaps(tmp_path: Path) -> None:
    x, y = sum_data()
    plot = PlotHistory(tmp_path / "p.png", dpi=20)
    history = await small_model().fit(
        x, y, epochs=3, batch_size=8, validation_data=(x, y), validation_freq=2,
        verbose=0, callbacks=[plot],
    )  # fmt: skip
    assert plot.epochs == [1, 2, 3]
    assert plot.history["loss"] == history.history["loss"]
    val = plot.history["val_loss"]
    assert math.isnan(val[0])
    assert math.isnan(val[2])
    assert val[1] == history.history["val_loss"][0]


@pytest.mark.anyio
async def test_the_png_is_rewritten_at_each_epoch_end_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = sum_data()
    path = tmp_path / "curves.png"
    threads: list[threading.Thread] = []
    real_render = plot_module.render

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return real_render(*args)

    monkeypatch.setattr(plot_module, "render", spy)
    snapshots: list[bytes] = []
    seen = LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(path.read_bytes()))
    loop_thread = threading.current_thread()
    await small_model().fit(
        x, y, epochs=3, batch_size=8, verbose=0, callbacks=[PlotHistory(path, dpi=30), seen]
    )
    assert len(snapshots) == 3
    assert len(set(snapshots)) == 3  # each epoch drew a longer curve
    assert all(s[:8] == PNG_MAGIC for s in snapshots)
    assert len(threads) == 4  # three epoch ends and the train end
    assert loop_thread not in threads


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["while rendering", "between write and replace"])
async def test_an_interrupted_write_leaves_the_old_png(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "curves.png"
    plot = PlotHistory(path, dpi=30)
    plot.on_train_begin({})
    await plot.on_epoch_end(0, {"loss": 1.0})
    old = path.read_bytes()

    def crash(*args: Any, **kwargs: Any) -> None:
        for file in (a for a in args if hasattr(a, "write")):
            file.write(PNG_MAGIC + b"torn")  # half a picture, then the disk fills up
        raise OSError(28, "No space left on device")

    if where == "while rendering":
        monkeypatch.setattr("matplotlib.figure.Figure.savefig", crash)
    else:
        monkeypatch.setattr("aiofit._atomic.os.replace", crash)
    with pytest.raises(OSError, match="No space left") as info:
        await plot.on_epoch_end(1, {"loss": 0.5})
    assert info.value.filename == str(path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["curves.png"]  # no temp file left


@pytest.mark.anyio
async def test_a_missing_folder_fails_before_training(tmp_path: Path) -> None:
    x, y = sum_data()
    epochs: list[int] = []
    began = LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    plot = PlotHistory(tmp_path / "nope" / "curves.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        await small_model().fit(x, y, epochs=2, verbose=0, callbacks=[plot, began])
    assert epochs == []


@pytest.mark.anyio
async def test_one_instance_serves_several_fits(tmp_path: Path) -> None:
    x, y = sum_data()
    plot = PlotHistory(tmp_path / "curves.png", dpi=20)
    for epochs in (3, 2):
        await small_model().fit(x, y, epochs=epochs, verbose=0, callbacks=[plot])
    assert plot.epochs == [1, 2]


def test_without_matplotlib_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "aiofit\[plot\]"'):
        PlotHistory(tmp_path / "curves.png")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"path": 3}, TypeError, "Received: path=3"),
        ({"path": "p.png", "metrics": "loss"}, TypeError, "Received: metrics='loss'"),
        ({"path": "p.png", "dpi": 0}, ValueError, "Received: dpi=0"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        PlotHistory(**kwargs)
