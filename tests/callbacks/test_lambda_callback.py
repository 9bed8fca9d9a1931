"""LambdaCallback: plain or async functions for any hook."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from aiofit.callbacks import CallbackList, LambdaCallback


@pytest.mark.anyio
async def test_named_hooks_receive_their_arguments_plain_and_async() -> None:
    record: list[tuple[Any, ...]] = []

    async def epoch_end(epoch: int, logs: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        record.append(("epoch_end", epoch, logs["loss"]))

    callback = LambdaCallback(
        on_train_begin=lambda logs: record.append(("train_begin",)),
        on_epoch_begin=lambda epoch, logs: record.append(("epoch_begin", epoch)),
        on_train_batch_begin=lambda batch, logs: record.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: record.append(("batch_end", batch, logs["size"])),
        on_epoch_end=epoch_end,
        on_train_end=lambda logs: record.append(("train_end", logs["loss"])),
    )
    callbacks = CallbackList([callback])
    await callbacks.on_train_begin()
    await callbacks.on_epoch_begin(0)
    await callbacks.on_train_batch_begin(0, {"batch": 0, "size": 2})
    await callbacks.on_train_batch_end(0, {"batch": 0, "size": 2, "loss": 0.5})
    await callbacks.on_epoch_end(0, {"loss": 0.5})
    await callbacks.on_train_end({"loss": 0.5})
    assert record == [
        ("train_begin",),
        ("epoch_begin", 0),
        ("batch_begin", 0),
        ("batch_end", 0, 2),
        ("epoch_end", 0, 0.5),
        ("train_end", 0.5),
    ]


@pytest.mark.anyio
async def test_kwargs_hooks_and_the_batch_alias() -> None:
    record: list[tuple[str, Any]] = []

    async def test_end(logs: dict[str, Any]) -> None:
        record.append(("test_end", logs["loss"]))

    callback = LambdaCallback(
        on_test_end=test_end,
        on_predict_batch_end=lambda batch, logs: record.append(("predict_batch_end", batch)),
        on_batch_end=lambda batch, logs: record.append(("batch_end", batch)),
    )
    callbacks = CallbackList([callback])
    assert not callbacks.overrides("on_epoch_end")
    await callbacks.on_test_end({"loss": 0.25})
    await callbacks.on_predict_batch_end(3, {})
    await callbacks.on_train_batch_end(4, {})
    assert record == [("test_end", 0.25), ("predict_batch_end", 3), ("batch_end", 4)]


def test_unknown_hook_names_and_non_callables_are_rejected() -> None:
    with pytest.raises(TypeError, match="Received: on_epoch_finish="):
        LambdaCallback(on_epoch_finish=print)
    with pytest.raises(TypeError, match="Received: on_epoch_end=3"):
        LambdaCallback(on_epoch_end=3)  # type: ignore[arg-type]
