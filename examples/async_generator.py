"""Train from an async generator, e.g. batches arriving from a network service.

The generator is awaited on the event loop; the numpy step runs in aiofit's
worker thread, so waiting for data and computing overlap. With
``steps_per_epoch`` every epoch takes that many batches from the same live
generator; aiofit closes it (``aclose()``) when fit ends.

Run: ``python examples/async_generator.py``
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import numpy as np

import aiofit
from aiofit import layers


async def batches(batch_size: int = 64, seed: int = 0) -> AsyncIterator[tuple[np.ndarray, ...]]:
    """An endless stream of noisy samples of y = 3 x0 - 2 x1 + 1."""
    rng = np.random.default_rng(seed)
    while True:
        await anyio.sleep(0.001)  # stand-in for network latency
        x = rng.normal(size=(batch_size, 2)).astype(np.float32)
        y = (3 * x[:, :1] - 2 * x[:, 1:] + 1 + rng.normal(0, 0.1, (batch_size, 1)))
        yield x, y.astype(np.float32)


async def main() -> None:
    model = aiofit.Sequential([layers.Input(shape=(2,)), layers.Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    await model.fit(batches(), epochs=5, steps_per_epoch=50, verbose=2)
    kernel, bias = model.get_weights()
    print(f"learned y = {kernel[0, 0]:.2f} x0 + {kernel[1, 0]:.2f} x1 + {bias[0]:.2f}")


if __name__ == "__main__":
    aiofit.run(main())
