"""The Callback base class: no-op hooks, Keras aliases, set_model/set_params by hand."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from aiofit.callbacks import Callback
from aiofit.callbacks.base import BATCH_HOOKS, HOOKS


def _call(callback: Callback, hook: str) -> Any:
    method = getattr(callback, hook)
    if hook.startswith("on_epoch_") or "batch" in hook:
        return method(3, {"x": 1})
    return method({"x": 1})


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_a_plain_no_op(hook: str) -> None:
    callback = Callback()
    assert not inspect.iscoroutinefunction(getattr(callback, hook))
    assert _call(callback, hook) is None


def test_hook_list_matches_the_contract() -> None:
    assert set(HOOKS) == {
        f"on_{stage}_{edge}"
        for stage in ("train", "epoch", "test", "predict", "batch")
        for edge in ("begin", "end")
    } | {
        f"on_{stage}_batch_{edge}"
        for stage in ("train", "test", "predict")
        for edge in ("begin", "end")
    }
    assert set(BATCH_HOOKS) < set(HOOKS)


@pytest.mark.parametrize("edge", ["begin", "end"])
def test_train_batch_hooks_call_the_batch_alias_with_the_same_arguments(edge: str) -> None:
    calls: list[tuple[int, object]] = []

    class Legacy(Callback):
        def on_batch_begin(self, batch: int, logs: Any = None) -> None:
            calls.append((batch, logs))

        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            calls.append((batch, logs))

    logs = {"batch": 4, "size": 8}
    assert getattr(Legacy(), f"on_train_batch_{edge}")(4, logs) is None
    assert calls == [(4, logs)]
    assert calls[0][1] is logs


@pytest.mark.anyio
async def test_train_batch_alias_returns_the_awaitable_of_an_async_alias() -> None:
    calls: list[int] = []

    class AsyncLegacy(Callback):
        async def on_batch_end(self, batch: int, logs: Any = None) -> None:
            calls.append(batch)

    result = AsyncLegacy().on_train_batch_end(7, {})
    assert inspect.isawaitable(result)
    assert calls == []  # nothing ran until awaited
    await result
    assert calls == [7]


def test_test_and_predict_batch_hooks_do_not_call_the_train_alias() -> None:
    calls: list[str] = []

    class Legacy(Callback):
        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            calls.append("on_batch_end")

    callback = Legacy()
    callback.on_test_batch_end(0, {})
    callback.on_predict_batch_end(0, {})
    assert calls == []


def test_set_model_and_set_params_by_hand() -> None:
    callback = Callback()
    assert callback.model is None
    assert callback.params == {}
    model = object()
    params = {"epochs": 2, "steps": 10, "verbose": 0}
    callback.set_model(model)
    callback.set_params(params)
    assert callback.model is model
    assert callback.params == {"epochs": 2, "steps": 10, "verbose": 0}


def test_subclass_that_skips_super_init_still_has_a_model_slot() -> None:
    class NoInit(Callback):
        def __init__(self) -> None:
            self.seen = 0

    callback = NoInit()
    assert callback.model is None
    callback.set_model("m")
    assert callback.model == "m"
