"""CallbackList: order, shared logs, async hooks awaited in turn, aliases, dispatch tables."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from aiofit.callbacks import Callback, CallbackList, History, ProgbarLogger
from aiofit.callbacks.base import BATCH_HOOKS, HOOKS

pytestmark = pytest.mark.anyio

_DISPATCHED = [h for h in HOOKS if h not in ("on_batch_begin", "on_batch_end")]


def _args(hook: str) -> tuple[Any, ...]:
    """Positional arguments for ``hook`` before ``logs``."""
    return (5,) if hook.startswith("on_epoch_") or "batch" in hook else ()


def _recorder(name: str, record: list[tuple[Any, ...]], *, is_async: bool) -> Callback:
    """A callback overriding every dispatched hook, recording (name, hook, args, logs)."""

    def make(hook: str) -> Any:
        if is_async:

            async def async_hook(self: Callback, *args: Any) -> None:
                await anyio.lowlevel.checkpoint()
                record.append((name, hook, *args))

            return async_hook

        def hook_fn(self: Callback, *args: Any) -> None:
            record.append((name, hook, *args))

        return hook_fn

    cls = type(f"Recorder{name}", (Callback,), {hook: make(hook) for hook in _DISPATCHED})
    return cls()  # type: ignore[no-any-return]


@pytest.mark.parametrize("hook", _DISPATCHED)
async def test_every_hook_calls_every_callback_in_list_order_with_the_same_logs(
    hook: str,
) -> None:
    record: list[tuple[Any, ...]] = []
    callbacks = CallbackList(
        [
            _recorder("a", record, is_async=False),
            _recorder("b", record, is_async=True),
            _recorder("c", record, is_async=False),
        ]
    )
    logs = {"loss": 1.0}
    await getattr(callbacks, hook)(*_args(hook), logs)
    assert [(r[0], r[1], *r[2:-1]) for r in record] == [
        (name, hook, *_args(hook)) for name in "abc"
    ]
    assert all(r[-1] is logs for r in record)


async def test_missing_logs_become_one_dict_shared_by_all_callbacks() -> None:
    seen: list[dict[str, Any]] = []

    class Adds(Callback):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs[self.key] = epoch
            seen.append(logs)

    await CallbackList([Adds("x"), Adds("y")]).on_epoch_end(2)
    assert seen[0] is seen[1]
    assert seen[0] == {"x": 2, "y": 2}


async def test_async_hook_is_fully_awaited_before_the_next_callback_runs() -> None:
    record: list[str] = []
    started, release = anyio.Event(), anyio.Event()

    class Waits(Callback):
        async def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            record.append("waits: started")
            started.set()
            await release.wait()
            record.append("waits: done")

    class Plain(Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            record.append("plain")

    async def releaser() -> None:
        await started.wait()
        record.append("releaser")
        release.set()

    callbacks = CallbackList([Waits(), Plain()])
    async with anyio.create_task_group() as tg:
        tg.start_soon(releaser)
        await callbacks.on_train_batch_end(0, {})
    assert record == ["waits: started", "releaser", "waits: done", "plain"]


@pytest.mark.parametrize("is_async", [False, True], ids=["def", "async-def"])
async def test_batch_aliases_reach_callbacks_overriding_only_on_batch_begin_end(
    is_async: bool,
) -> None:
    record: list[tuple[str, int]] = []
    if is_async:

        class Legacy(Callback):
            async def on_batch_begin(self, batch: int, logs: Any = None) -> None:
                await anyio.lowlevel.checkpoint()
                record.append(("begin", batch))

            async def on_batch_end(self, batch: int, logs: Any = None) -> None:
                await anyio.lowlevel.checkpoint()
                record.append(("end", batch))
    else:

        class Legacy(Callback):  # type: ignore[no-redef]
            def on_batch_begin(self, batch: int, logs: Any = None) -> None:
                record.append(("begin", batch))

            def on_batch_end(self, batch: int, logs: Any = None) -> None:
                record.append(("end", batch))

    callbacks = CallbackList([Legacy()])
    assert callbacks.overrides("on_train_batch_begin")
    assert callbacks.overrides("on_train_batch_end")
    assert not callbacks.overrides("on_test_batch_end")
    await callbacks.on_train_batch_begin(0, {})
    await callbacks.on_train_batch_end(0, {})
    await callbacks.on_batch_begin(1, {})  # the list's own Keras aliases
    await callbacks.on_batch_end(1, {})
    for hook in ("on_test_batch_begin", "on_test_batch_end", "on_predict_batch_end"):
        await getattr(callbacks, hook)(2, {})
    assert record == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]


async def test_callback_overriding_nothing_is_never_called_per_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The base hooks are made to explode: reaching one would fail the test."""

    def boom(self: Callback, *args: Any) -> None:
        raise AssertionError(f"a non-overridden hook was called with {args}")

    for hook in (*BATCH_HOOKS, "on_batch_begin", "on_batch_end"):
        monkeypatch.setattr(Callback, hook, boom)
    record: list[int] = []

    class OnlyBatchEnd(Callback):
        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            record.append(batch)

    # OnlyBatchEnd inherits the exploding on_train_batch_end, which calls its alias:
    # so it must be reached through the alias, never through the base.
    class AliasBridge(OnlyBatchEnd):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.on_batch_end(batch, logs)

    callbacks = CallbackList([Callback(), AliasBridge(), Callback()])
    for batch in range(3):
        for hook in BATCH_HOOKS:
            await getattr(callbacks, hook)(batch, {"batch": batch, "size": 1})
    assert record == [0, 1, 2]
    assert [callbacks.overrides(h) for h in BATCH_HOOKS] == [
        False,
        True,
        False,
        False,
        False,
        False,
    ]


async def test_only_on_batch_end_is_called_from_on_train_batch_end() -> None:
    record: list[tuple[int, dict[str, Any]]] = []

    class OnlyBatchEnd(Callback):
        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            record.append((batch, logs))

    logs = {"batch": 3, "size": 2, "loss": 0.5}
    callbacks = CallbackList([OnlyBatchEnd()])
    await callbacks.on_train_batch_begin(3, {"batch": 3, "size": 2})
    await callbacks.on_train_batch_end(3, logs)
    assert record == [(3, logs)]
    assert record[0][1] is logs


async def test_instance_attribute_hooks_count_as_overrides() -> None:
    record: list[int] = []
    callback = Callback()
    callback.on_epoch_begin = lambda epoch, logs: record.append(epoch)  # type: ignore[method-assign]
    callbacks = CallbackList([callback])
    assert callbacks.overrides("on_epoch_begin")
    await callbacks.on_epoch_begin(4)
    assert record == [4]


async def test_append_adds_a_callback_that_is_then_dispatched() -> None:
    record: list[str] = []

    class Ends(Callback):
        def on_train_end(self, logs: Any = None) -> None:
            record.append("end")

    callbacks = CallbackList()
    assert not callbacks.overrides("on_train_end")
    callbacks.append(Ends())
    assert callbacks.overrides("on_train_end")
    await callbacks.on_train_end()
    assert record == ["end"]


async def test_an_exception_in_a_hook_propagates_as_itself_and_stops_the_hook() -> None:
    record: list[str] = []

    class Fails(Callback):
        async def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            raise KeyError("boom")

    class After(Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            record.append("after")

    with pytest.raises(KeyError, match="boom"):
        await CallbackList([Fails(), After()]).on_epoch_end(0, {})
    assert record == []


def test_default_callbacks_go_after_user_callbacks_history_last() -> None:
    user = Callback()
    callbacks = CallbackList([user], add_history=True, add_progbar=True)
    assert callbacks.callbacks[0] is user
    assert isinstance(callbacks.callbacks[1], ProgbarLogger)
    assert isinstance(callbacks.callbacks[2], History)
    assert callbacks.history is callbacks.callbacks[2]
    assert len(callbacks.callbacks) == 3


def test_given_history_and_progbar_are_not_duplicated() -> None:
    history, progbar = History(), ProgbarLogger()
    callbacks = CallbackList([history, progbar], add_history=True, add_progbar=True)
    assert callbacks.callbacks == [history, progbar]
    assert callbacks.history is history


def test_without_defaults_there_is_no_history() -> None:
    callbacks = CallbackList()
    assert callbacks.callbacks == []
    assert callbacks.history is None


def test_a_single_callback_is_accepted() -> None:
    callback = Callback()
    assert CallbackList(callback).callbacks == [callback]


def test_set_model_and_set_params_reach_every_callback() -> None:
    class Model:
        stop_training = False

    model, first, second = Model(), Callback(), Callback()
    callbacks = CallbackList(
        [first, second], add_history=True, model=model, epochs=3, steps=None, verbose=0
    )
    for callback in (callbacks, first, second, callbacks.history):
        assert callback is not None
        assert callback.model is model
        assert callback.params == {"epochs": 3, "steps": None, "verbose": 0}
    assert model.history is callbacks.history  # type: ignore[attr-defined]
    other = Model()
    callbacks.set_model(other)
    callbacks.set_params({"epochs": 1, "steps": 2, "verbose": 0})
    assert first.model is other
    assert second.params == {"epochs": 1, "steps": 2, "verbose": 0}


def test_a_model_without_a_dict_still_gets_its_callbacks() -> None:
    class Slotted:
        __slots__ = ("stop_training",)

    model = Slotted()
    callbacks = CallbackList([Callback()], add_history=True, model=model)
    assert callbacks.callbacks[0].model is model


@pytest.mark.parametrize("bad", [print, "History", [Callback(), 3]])
def test_non_callbacks_are_rejected_naming_the_value(bad: Any) -> None:
    with pytest.raises(TypeError, match="Received: "):
        CallbackList(bad)


def test_overrides_rejects_an_unknown_hook_name() -> None:
    with pytest.raises(ValueError, match=r"Received: hook='on_step_end'"):
        CallbackList().overrides("on_step_end")
