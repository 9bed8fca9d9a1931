"""``pip install aiofit`` (numpy + anyio + uvloop) is enough: nothing else is imported.

The test environment has every extra installed, so a stray import of an optional
package (or of one that only arrives with an extra, as sniffio does with trio)
would go unnoticed; here such imports are made to fail in a child process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

OPTIONAL = ["sniffio", "trio", "outcome", "httpx", "redis", "matplotlib", "mpi4py",
            "starlette", "uvicorn", "psutil", "threadpoolctl", "torch"]  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
            return None

    sys.meta_path.insert(0, Block())

    import numpy as np
    import aiofit
    from aiofit import layers, sources, callbacks  # noqa: F401

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    model = aiofit.Sequential([layers.Input(shape=(4,)), layers.Dense(2, activation="softmax")],
                              seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

    async def main():
        async def batches():
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]
        await model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        await model.fit(batches(), verbose=0)
        async with sources.serve_batches(x, y, batch_size=16) as server:
            await model.fit(sources.from_tcp(server.host, server.port), verbose=0)
        print("ok", sorted(m for m in BLOCKED if m in sys.modules))

    aiofit.run(main())
    """
)


def test_training_needs_only_the_base_dependencies() -> None:
    code = f"BLOCKED = {set(OPTIONAL)!r}\n" + SCRIPT
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok []"
