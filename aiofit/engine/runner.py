"""``aiofit.run``: run an engine coroutine to completion from synchronous code."""

from __future__ import annotations

import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

import anyio

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` (e.g. ``model.fit(...)``) on asyncio, with uvloop when it is installed.

    Example:
        >>> history = aiofit.run(model.fit(x, y, epochs=5))
    """
    if not isinstance(coro, Coroutine):
        raise TypeError(
            "aiofit.run expects a coroutine such as `model.fit(...)` (called, not awaited). "
            f"Received: {coro!r}"
        )
    options = {"use_uvloop": importlib.util.find_spec("uvloop") is not None}

    async def main() -> T:
        return await coro

    return anyio.run(main, backend="asyncio", backend_options=options)
