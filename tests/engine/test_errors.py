"""Errors from the source, a callback or the model reach the caller as themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import numpy as np
import pytest

from aiofit import DataError
from aiofit.callbacks import Callback
from aiofit.engine import evaluate, fit, predict

from .conftest import LinearModel, Recorder, batches_of, engine_threads, make_data

pytestmark = pytest.mark.anyio


class SourceBroke(RuntimeError):
    pass


class CallbackBroke(KeyError):
    pass


class ModelBroke(ArithmeticError):
    pass


async def failing_async(batches: list[Any], at: int) -> AsyncIterator[Any]:
    for i, b in enumerate(batches):
        if i == at:
            raise SourceBroke(f"source failed at {i}")
        yield b


def failing_sync(batches: list[Any], at: int) -> Iterator[Any]:
    for i, b in enumerate(batches):
        if i == at:
            raise SourceBroke(f"source failed at {i}")
        yield b


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_source_error_surfaces_at_its_batch(kind: str, recorder: Recorder) -> None:
    x, y = make_data(12)
    batches = batches_of(x, y, 2)
    src = failing_async(batches, 3) if kind == "async" else failing_sync(batches, 3)
    model = LinearModel()
    with pytest.raises(SourceBroke, match="failed at 3"):
        await fit(model, src, verbose=0, callbacks=[recorder])
    assert len(model.trained()) == 3  # batches 0, 1, 2 trained, nothing after
    ends = [c[1] for c in recorder.calls if c[0] == "on_train_batch_end"]
    assert ends == [0, 1, 2]
    assert "on_train_batch_begin" not in [c[0] for c in recorder.calls[-2:]]
    assert recorder.names()[-1] == "on_train_end"
    assert engine_threads() == []


@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("error", [SourceBroke, anyio.WouldBlock])
async def test_source_error_with_steps_queued_ahead(kind: str, error: type[Exception]) -> None:
    # No callback between batches: the stream's next buffered batch is queued behind
    # the running step. The error still comes at its batch, as itself, even one of
    # the type the engine uses internally to mean "nothing buffered yet".
    def gen() -> Iterator[Any]:
        yield from batches[:3]
        raise error("source failed at 3")

    async def agen() -> AsyncIterator[Any]:
        for batch in gen():
            yield batch

    x, y = make_data(12)
    batches = batches_of(x, y, 2)
    model = LinearModel()
    with pytest.raises(error, match="failed at 3"):
        await fit(model, agen() if kind == "async" else gen(), verbose=0)
    assert len(model.trained()) == 3
    assert engine_threads() == []


async def test_callback_error_surfaces_within_the_batch(recorder: Recorder) -> None:
    class Broken(Callback):
        async def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 1:
                raise CallbackBroke("callback failed")

    x, y = make_data(16)
    model = LinearModel()
    with pytest.raises(CallbackBroke):
        await fit(model, x, y, batch_size=2, verbose=0, callbacks=[Broken(), recorder])
    assert len(model.trained()) == 2
    assert recorder.names()[-1] == "on_train_end"
    assert engine_threads() == []


async def test_model_error_surfaces_as_itself(recorder: Recorder) -> None:
    def explode(index: int) -> None:
        if index == 2:
            raise ModelBroke("model failed")

    x, y = make_data(16)
    model = LinearModel()
    model.on_step = explode
    with pytest.raises(ModelBroke, match="model failed"):
        await fit(model, x, y, batch_size=2, epochs=3, verbose=0, callbacks=[recorder])
    assert [c[1] for c in recorder.calls if c[0] == "on_train_batch_end"] == [0, 1]
    assert recorder.names()[-1] == "on_train_end"
    assert engine_threads() == []


async def test_on_train_begin_error_still_ends_training(recorder: Recorder) -> None:
    class Broken(Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            raise CallbackBroke("begin")

    x, y = make_data(4)
    with pytest.raises(CallbackBroke):
        await fit(LinearModel(), x, y, verbose=0, callbacks=[Broken(), recorder])
    assert recorder.names() == ["on_train_end"]


async def test_malformed_batch_is_a_data_error_naming_the_batch() -> None:
    x, y = make_data(8)
    batches: list[Any] = batches_of(x, y, 2)
    batches[2] = (x[:2], y[:3])  # mismatched lengths
    model = LinearModel()
    ref = LinearModel()
    for b in batches[:2]:
        ref.train_on_batch(*b)

    async def stream() -> AsyncIterator[Any]:
        for b in batches:
            yield b

    with pytest.raises(DataError, match="batch 2") as info:
        await fit(model, stream(), verbose=0)
    assert "Received" in str(info.value) or "received" in str(info.value)
    # Only the two good batches touched the weights.
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


async def test_data_error_from_the_model_gets_the_batch_index() -> None:
    def reject(index: int) -> None:
        if index == 1:
            raise DataError("train_on_batch: labels out of range; received 7")

    x, y = make_data(8)
    model = LinearModel()
    model.on_step = reject
    with pytest.raises(DataError, match=r"^batch 1 of epoch 1: train_on_batch: labels") as info:
        await fit(model, x, y, batch_size=4, verbose=0)
    assert isinstance(info.value.__cause__, DataError)


async def test_prefetch_error_waits_for_the_batch_before_it(recorder: Recorder) -> None:
    """A source error met while batch i computes is raised after batch i ends."""
    x, y = make_data(4)
    model = LinearModel()
    with pytest.raises(SourceBroke):
        await fit(model, failing_async(batches_of(x, y, 2), 1), verbose=0, callbacks=[recorder])
    assert [c[0] for c in recorder.calls[-3:]] == [
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_train_end",
    ]


async def test_evaluate_and_predict_errors_surface_as_themselves() -> None:
    x, y = make_data(8)
    model = LinearModel()
    with pytest.raises(SourceBroke):
        await evaluate(model, failing_async(batches_of(x, y, 2), 2), verbose=0)
    with pytest.raises(SourceBroke):
        await predict(model, failing_async([(b[0],) for b in batches_of(x, y, 2)], 1), verbose=0)
    assert engine_threads() == []


async def test_validation_source_error_surfaces(recorder: Recorder) -> None:
    x, y = make_data(8)
    with pytest.raises(SourceBroke):
        await fit(
            LinearModel(), x, y, verbose=0, callbacks=[recorder],
            validation_data=failing_async(batches_of(x, y, 2), 1),
        )  # fmt: skip
    assert recorder.names()[-2:] == ["on_test_batch_end", "on_train_end"]


async def test_predict_with_no_batches_is_an_error() -> None:
    async def empty() -> AsyncIterator[Any]:
        return
        yield

    with pytest.raises(ValueError, match="no batch"):
        await predict(LinearModel(), empty(), verbose=0)
