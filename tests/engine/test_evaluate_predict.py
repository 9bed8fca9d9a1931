"""evaluate and predict over every kind of source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest

from aiofit.engine import evaluate, predict

from .conftest import (
    AsyncIndexable,
    Indexable,
    LinearModel,
    Recorder,
    batches_of,
    engine_threads,
    make_data,
)

pytestmark = pytest.mark.anyio


def fitted_model() -> LinearModel:
    model = LinearModel()
    model.w[:] = np.array([[1.5], [-0.5]])
    model.b[:] = 0.25
    return model


def closed_form_mse(x: np.ndarray, y: np.ndarray, sw: np.ndarray | None = None) -> float:
    err = (x @ np.array([[1.5], [-0.5]]) + 0.25)[:, 0] - y
    weight = np.ones(len(x)) if sw is None else sw
    return float(np.mean(err**2 * weight))


@pytest.mark.parametrize("kind", ["arrays", "async", "sync", "indexable", "aget"])
async def test_evaluate_gives_the_dataset_loss_for_every_source(kind: str) -> None:
    x, y = make_data(10)
    batches = batches_of(x, y, 4)

    async def agen() -> AsyncIterator[Any]:
        for b in batches:
            yield b

    def gen() -> Iterator[Any]:
        yield from batches

    src: Any = {
        "arrays": x,
        "async": agen(),
        "sync": gen(),
        "indexable": Indexable(batches),
        "aget": AsyncIndexable(batches),
    }[kind]
    got = await evaluate(fitted_model(), src, y if kind == "arrays" else None, batch_size=4,
                         verbose=0)  # fmt: skip
    # Batch means weighted by batch size are the mean over the whole dataset.
    assert got["loss"] == pytest.approx(closed_form_mse(x, y), rel=1e-12)
    assert list(got) == ["loss", "mae"]


async def test_evaluate_with_sample_weight() -> None:
    x, y = make_data(9)
    sw = np.linspace(0.0, 2.0, 9)
    got = await evaluate(fitted_model(), x, y, sample_weight=sw, batch_size=3, verbose=0)
    assert got["loss"] == pytest.approx(closed_form_mse(x, y, sw), rel=1e-12)


async def test_evaluate_steps_takes_that_many_batches_of_an_infinite_stream() -> None:
    x, y = make_data(40)
    pulled: list[int] = []

    async def forever() -> AsyncIterator[Any]:
        while True:
            for b in batches_of(x, y, 4):
                pulled.append(1)
                yield b

    model = fitted_model()
    got = await evaluate(model, forever(), steps=3, verbose=0)
    assert got["loss"] == pytest.approx(closed_form_mse(x[:12], y[:12]), rel=1e-12)
    assert len(model.calls) == 3
    assert len(pulled) == 3  # nothing read ahead past the last step
    assert engine_threads() == []


async def test_evaluate_never_fires_train_hooks(recorder: Recorder) -> None:
    x, y = make_data(8)
    await evaluate(fitted_model(), x, y, verbose=0, callbacks=[recorder])
    assert all("train" not in name and "epoch" not in name for name in recorder.names())


async def test_evaluate_of_an_empty_source_warns_and_gives_no_logs() -> None:
    async def empty() -> AsyncIterator[Any]:
        return
        yield

    with pytest.warns(UserWarning, match="ran out of data"):
        got = await evaluate(fitted_model(), empty(), verbose=0)
    assert got == {}


@pytest.mark.parametrize("shape", ["bare", "tuple1", "xy"])
async def test_predict_accepts_x_alone_or_in_a_tuple(shape: str) -> None:
    x, y = make_data(10)

    async def agen() -> AsyncIterator[Any]:
        for i in range(0, 10, 3):
            part = x[i : i + 3]
            yield {"bare": part, "tuple1": (part,), "xy": (part, y[i : i + 3])}[shape]

    out = await predict(fitted_model(), agen(), verbose=0)
    np.testing.assert_allclose(out, x @ np.array([[1.5], [-0.5]]) + 0.25, rtol=1e-12)


async def test_predict_arrays_in_order_with_steps() -> None:
    x, _ = make_data(10)
    model = fitted_model()
    out = await predict(model, x, batch_size=3, steps=2, verbose=0)
    assert out.shape == (6, 1)
    np.testing.assert_allclose(out, x[:6] @ np.array([[1.5], [-0.5]]) + 0.25, rtol=1e-12)
    assert [len(c[1]) for c in model.calls] == [3, 3]


async def test_predict_never_shuffles() -> None:
    x, _ = make_data(64)
    out = await predict(fitted_model(), x, batch_size=8, verbose=0)
    np.testing.assert_allclose(out, x @ np.array([[1.5], [-0.5]]) + 0.25, rtol=1e-12)


async def test_evaluate_and_predict_print_a_progress_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, y = make_data(8)
    await evaluate(fitted_model(), x, y, batch_size=4, verbose=2)
    assert "loss:" in capsys.readouterr().out
