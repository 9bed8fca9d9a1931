"""Train from a streaming HTTP endpoint that sends NDJSON (needs httpx: ``aiofit[http]``).

A tiny HTTP/1.1 server (an anyio TCP listener) answers every GET with the digits
as newline-delimited JSON, ``{"pixels": [...], "digit": 3}`` per line, in chunked
transfer encoding. ``from_http`` parses the body as it arrives and groups the
records into batches; every epoch sends a new request.

Run: ``python examples/http_ndjson.py``
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import numpy as np
from anyio.abc import SocketAttribute, SocketStream

import aiofit
from aiofit import datasets, layers
from aiofit.sources import from_http

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")


def ndjson_chunks(x: np.ndarray, y: np.ndarray, records_per_chunk: int = 100) -> Iterator[bytes]:
    """The records as NDJSON, cut into HTTP chunks (hex size, CRLF, data, CRLF)."""
    for start in range(0, len(x), records_per_chunk):
        lines = (json.dumps({"pixels": xi.round(4).tolist(), "digit": int(yi)}) + "\n"
                 for xi, yi in zip(x[start:start + records_per_chunk],
                                   y[start:start + records_per_chunk], strict=True))
        data = "".join(lines).encode()
        yield b"%x\r\n%s\r\n" % (len(data), data)
    yield b"0\r\n\r\n"


async def main() -> None:
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=0)

    async def handle(client: SocketStream) -> None:
        async with client:
            request = b""
            while b"\r\n\r\n" not in request:  # read the request head; a GET has no body
                request += await client.receive()
            await client.send(HEAD)
            for chunk in ndjson_chunks(x_train, y_train):
                await client.send(chunk)

    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(64, activation="relu"),
         layers.Dense(10, activation="softmax")],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        source = from_http(f"http://127.0.0.1:{port}/digits", "ndjson", 32,
                           x="pixels", y="digit", y_dtype="int64")
        await model.fit(source, epochs=15, verbose=2)
        print(f"{source.requests} requests, one per epoch")
        tg.cancel_scope.cancel()
    logs = await model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {logs['accuracy']:.4f}")


if __name__ == "__main__":
    aiofit.run(main())
