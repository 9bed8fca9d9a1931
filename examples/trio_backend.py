"""aiofit on trio: the same engine, through anyio.

Run: ``python examples/trio_backend.py`` (needs ``pip install trio``)
"""

from __future__ import annotations

import trio

import aiofit
from aiofit import datasets, layers


async def main() -> None:
    x, y = datasets.load_digits()
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(32, activation="relu"),
         layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(heartbeat)
        history = await model.fit(x, y, epochs=5, verbose=0)
        nursery.cancel_scope.cancel()
    print(f"trained on trio; final accuracy {history.history['accuracy'][-1]:.4f}")


async def heartbeat() -> None:
    """Keeps ticking while the model trains: the event loop is never blocked."""
    ticks = 0
    try:
        while True:
            await trio.sleep(0.01)
            ticks += 1
    finally:
        print(f"heartbeat ticked {ticks} times during training")


if __name__ == "__main__":
    trio.run(main)
