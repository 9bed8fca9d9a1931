"""Train from a Redis stream with a consumer group, exactly once across crashes.

A producer XADDs one entry per digit image (``encode_entry`` writes the fields the
reader expects); the trainer reads them with ``from_redis_stream`` as one consumer
of a group. Entries are acknowledged only once a ``BackupAndRestore`` backup covers
the batch they were trained in: kill this script at any moment and run it again,
and no entry is lost or trained twice. Needs ``pip install "aiofit[redis]"`` and a
Redis server (asyncio only: redis-py's client).

Run: ``python examples/redis_stream.py [--url redis://localhost:6379/0]``
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

import aiofit
from aiofit import callbacks, datasets, layers
from aiofit.sources import StreamField, encode_entry, from_redis_stream

FIELDS = {"x": StreamField("pixels", "float32", (64,)), "y": StreamField("label", "int64", ())}


async def produce(url: str, stream: str, x: np.ndarray, y: np.ndarray) -> None:
    """What a producer service does: one XADD per sample."""
    async with aioredis.Redis.from_url(url) as client:
        async with client.pipeline(transaction=False) as pipe:
            for xi, yi in zip(x, y, strict=True):
                pipe.xadd(stream, encode_entry(xi, yi, fields=FIELDS))
            await pipe.execute()


async def main(url: str) -> None:
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=0)
    stream = f"digits-{uuid.uuid4().hex[:8]}"
    epochs, batch_size = 5, 32
    # A live stream is one pass of entries: here the producer sends the training
    # set five times, and each epoch takes one pass' worth of batches from it.
    for _ in range(epochs):
        await produce(url, stream, x_train, y_train)
    model = aiofit.Sequential(
        [layers.Input(shape=(64,)), layers.Dense(64, activation="relu"),
         layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    source = from_redis_stream(url, stream, group="trainers", consumer="worker-1",
                               batch_size=batch_size, fields=FIELDS)
    with tempfile.TemporaryDirectory() as backups:
        backup = callbacks.BackupAndRestore(Path(backups) / "digits", save_freq=10)
        await model.fit(source, epochs=epochs, steps_per_epoch=-(-len(x_train) // batch_size),
                        verbose=2, callbacks=[backup])
    logs = await model.evaluate(x_test, y_test, verbose=0)
    stats = source.statistics()
    print(f"trained on {stats.entries} entries, acknowledged {stats.acked}; "
          f"test accuracy {logs['accuracy']:.4f}")
    async with aioredis.Redis.from_url(url) as client:
        await client.delete(stream)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://localhost:6379/0")
    aiofit.run(main(parser.parse_args().url))
