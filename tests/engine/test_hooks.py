"""Hook order and logs of fit/evaluate/predict, against hand-written expectations."""

from __future__ import annotations

from typing import Any

import anyio.lowlevel
import numpy as np
import pytest

from aiofit.callbacks import Callback
from aiofit.engine import evaluate, fit, predict

from .conftest import (
    AsyncIndexable,
    Indexable,
    LinearModel,
    Recorder,
    ReIterable,
    SyncReIterable,
    batches_of,
    make_data,
)

pytestmark = pytest.mark.anyio

KINDS = ["arrays", "async_iterable", "sync_iterable", "indexable", "aget"]


def source(kind: str, x: np.ndarray, y: np.ndarray, size: int) -> tuple[Any, Any]:
    """``(x, y)`` arguments of fit for one source kind, all giving the same batches."""
    if kind == "arrays":
        return x, y
    batches = batches_of(x, y, size)
    wrap = {
        "async_iterable": ReIterable,
        "sync_iterable": SyncReIterable,
        "indexable": Indexable,
        "aget": AsyncIndexable,
    }[kind]
    return wrap(batches), None


def weighted(rows: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    total = sum(n for n, _ in rows)
    return {k: sum(n * logs[k] for n, logs in rows) / total for k in rows[0][1]}


def expected_fit_calls(train: list[Any], val: list[Any], epochs: int) -> list[tuple[Any, ...]]:
    """What Keras's fit fires, written out by hand, with logs from a reference model."""
    ref = LinearModel()
    calls: list[tuple[Any, ...]] = [("on_train_begin", {})]
    for epoch in range(epochs):
        calls.append(("on_epoch_begin", epoch, {}))
        rows = []
        for i, (bx, by) in enumerate(train):
            calls.append(("on_train_batch_begin", i, {"batch": i, "size": len(bx)}))
            logs = ref.train_on_batch(bx, by)
            rows.append((len(bx), logs))
            calls.append(("on_train_batch_end", i, {"batch": i, "size": len(bx), **logs}))
        calls.append(("on_test_begin", {}))
        val_rows = []
        for i, (bx, by) in enumerate(val):
            calls.append(("on_test_batch_begin", i, {"batch": i, "size": len(bx)}))
            logs = ref.test_on_batch(bx, by)
            val_rows.append((len(bx), logs))
            calls.append(("on_test_batch_end", i, {"batch": i, "size": len(bx), **logs}))
        val_logs = weighted(val_rows)
        calls.append(("on_test_end", val_logs))
        epoch_logs = {**weighted(rows), **{f"val_{k}": v for k, v in val_logs.items()}}
        calls.append(("on_epoch_end", epoch, epoch_logs))
    calls.append(("on_train_end", epoch_logs))
    return calls


def assert_calls(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert [c[:-1] for c in got] == [c[:-1] for c in want]
    for g, w in zip(got, want, strict=True):
        assert list(g[-1]) == list(w[-1]), g[0]  # same keys, same order
        assert g[-1] == pytest.approx(w[-1], rel=1e-12), g[0]


@pytest.mark.parametrize("kind", KINDS)
async def test_fit_fires_every_hook_in_keras_order(kind: str, recorder: Recorder) -> None:
    x, y = make_data(10)
    vx, vy = make_data(6, seed=1)
    tx, ty = source(kind, x, y, 4)
    val = (vx, vy) if kind == "arrays" else source(kind, vx, vy, 4)[0]
    model = LinearModel()
    history = await fit(
        model, tx, ty, batch_size=4, epochs=2, verbose=0, callbacks=[recorder],
        validation_data=val, validation_batch_size=4, shuffle=False,
    )  # fmt: skip
    want = expected_fit_calls(batches_of(x, y, 4), batches_of(vx, vy, 4), epochs=2)
    assert_calls(recorder.calls, want)
    assert recorder.params_at_begin == {"epochs": 2, "steps": 3, "verbose": 0} or (
        kind in ("async_iterable", "sync_iterable")
        and recorder.params_at_begin == {"epochs": 2, "steps": None, "verbose": 0}
    )
    epoch_ends = [c[2] for c in want if c[0] == "on_epoch_end"]
    assert history.epoch == [0, 1]
    assert list(history.history) == ["loss", "mae", "val_loss", "val_mae"]
    for key, values in history.history.items():
        assert values == pytest.approx([logs[key] for logs in epoch_ends], rel=1e-12)


async def test_indexable_on_epoch_end_called_each_epoch() -> None:
    x, y = make_data(10)
    data = Indexable(batches_of(x, y, 5))
    await fit(LinearModel(), data, epochs=3, verbose=0, shuffle=False)
    assert data.epoch_ends == 3


async def test_async_hooks_are_awaited_in_list_order() -> None:
    order: list[str] = []

    class Slow(Callback):
        async def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            await anyio.lowlevel.checkpoint()  # a real suspension; the next callback waits
            order.append(f"slow{epoch}")
            logs["learning_rate"] = 0.5

    class Plain(Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            order.append(f"plain{epoch}:{logs.get('learning_rate')}")

    x, y = make_data(8)
    history = await fit(LinearModel(), x, y, epochs=2, verbose=0, callbacks=[Slow(), Plain()])
    assert order == ["slow0", "plain0:0.5", "slow1", "plain1:0.5"]
    # History is last, so keys that callbacks add are recorded.
    assert history.history["learning_rate"] == [0.5, 0.5]


async def test_batch_aliases_are_called(recorder: Recorder) -> None:
    seen: list[tuple[str, int]] = []

    class Alias(Callback):
        def on_batch_begin(self, batch: int, logs: Any = None) -> None:
            seen.append(("begin", batch))

        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            seen.append(("end", batch))

    x, y = make_data(6)
    await fit(LinearModel(), x, y, batch_size=4, verbose=0, callbacks=[Alias()])
    assert seen == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]


async def test_evaluate_hooks_and_weighted_means(recorder: Recorder) -> None:
    x, y = make_data(10)
    model = LinearModel()
    model.w[:] = 0.25
    result = await evaluate(model, x, y, batch_size=4, verbose=0, callbacks=[recorder])
    ref = LinearModel()
    ref.w[:] = 0.25
    rows = [(len(bx), ref.test_on_batch(bx, by)) for bx, by in batches_of(x, y, 4)]
    # Closed form: the mean over all samples, whatever the batching.
    err = x @ np.full((2, 1), 0.25) - y[:, None]
    assert result["loss"] == pytest.approx(float(np.mean(err**2)), rel=1e-12)
    assert result == pytest.approx(weighted(rows), rel=1e-12)
    want = [("on_test_begin", {})]
    for i, (n, logs) in enumerate(rows):
        want += [
            ("on_test_batch_begin", i, {"batch": i, "size": n}),
            ("on_test_batch_end", i, {"batch": i, "size": n, **logs}),
        ]
    want.append(("on_test_end", weighted(rows)))
    assert_calls(recorder.calls, want)
    assert recorder.params_at_begin is None  # evaluate never fires on_train_begin
    assert recorder.params == {"epochs": 1, "steps": 3, "verbose": 0}


async def test_evaluate_return_dict_false_gives_a_list() -> None:
    x, y = make_data(8)
    got = await evaluate(LinearModel(), x, y, verbose=0, return_dict=False)
    assert isinstance(got, list)
    assert got == pytest.approx([float(np.mean(y**2)), float(np.mean(np.abs(y)))])


async def test_predict_hooks_and_outputs(recorder: Recorder) -> None:
    x, _ = make_data(10)
    model = LinearModel()
    model.w[:] = np.array([[2.0], [-1.0]])
    out = await predict(model, x, batch_size=4, verbose=0, callbacks=[recorder])
    np.testing.assert_allclose(out, x @ np.array([[2.0], [-1.0]]), rtol=1e-12)
    names = recorder.names()
    assert names == [
        "on_predict_begin",
        *["on_predict_batch_begin", "on_predict_batch_end"] * 3,
        "on_predict_end",
    ]
    assert [c[2]["size"] for c in recorder.calls if c[0] == "on_predict_batch_end"] == [4, 4, 2]
    np.testing.assert_allclose(recorder.calls[2][2]["outputs"], out[:4])
