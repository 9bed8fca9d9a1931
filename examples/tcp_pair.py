"""Train from a TCP batch stream: a server and its client in one script.

``serve_batches`` streams the digits over loopback, ``from_tcp`` feeds them to
``fit``. The client reads a frame only when fit's buffer has room, so the server
is paced by TCP flow control. One connection carries every epoch: the server
streams ``EPOCHS`` reshuffled passes and ``steps_per_epoch`` cuts them into epochs.
In real use the two halves run in different processes (see ``python -m aiofit
serve`` and ``python -m aiofit train --tcp``).

Run: ``python examples/tcp_pair.py``
"""

from __future__ import annotations

import math

import aiofit
from aiofit import datasets, layers
from aiofit.sources import from_tcp, serve_batches

EPOCHS, BATCH = 15, 32


async def main() -> None:
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=0)
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(64, activation="relu"),
         layers.Dense(10, activation="softmax")],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    async with serve_batches(x_train, y_train, batch_size=BATCH, shuffle=True, seed=0,
                             epochs=EPOCHS) as server:
        print(f"server on {server.host}:{server.port}")
        async with from_tcp(server.host, server.port) as stream:
            await model.fit(stream, epochs=EPOCHS, verbose=2,
                            steps_per_epoch=math.ceil(len(x_train) / BATCH))
        sent = server.statistics()
    logs = await model.evaluate(x_test, y_test, verbose=0)
    print(f"server sent {sent.frames_sent} frames ({sent.bytes_sent / 1e6:.1f} MB)")
    print(f"test accuracy {logs['accuracy']:.4f}")


if __name__ == "__main__":
    aiofit.run(main())
