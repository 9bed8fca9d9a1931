"""An async callback: publish progress to other tasks while training runs.

Hooks written ``async def`` are awaited before training goes on, so they can
await a queue, a websocket or a database. Here a consumer task on the same
event loop receives every epoch's logs through a memory stream.

Run: ``python examples/custom_callback.py``
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

import aiofit
from aiofit import callbacks, datasets, layers


class Publish(callbacks.Callback):
    """Send ``(epoch, logs)`` to a stream; close it when training ends."""

    def __init__(self, send: MemoryObjectSendStream[tuple[int, dict[str, Any]]]) -> None:
        super().__init__()
        self.send = send

    async def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        await self.send.send((epoch, dict(logs or {})))

    async def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        await self.send.aclose()


async def main() -> None:
    x, y = datasets.load_digits()
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(32, activation="relu"),
         layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    send, receive = anyio.create_memory_object_stream[tuple[int, dict[str, Any]]](1)

    async def dashboard() -> None:
        async with receive:
            async for epoch, logs in receive:
                print(f"[dashboard] epoch {epoch + 1}: accuracy {logs['accuracy']:.3f}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(dashboard)
        await model.fit(x, y, epochs=5, verbose=0, callbacks=[Publish(send)])


if __name__ == "__main__":
    aiofit.run(main())
