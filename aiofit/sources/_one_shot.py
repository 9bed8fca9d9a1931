"""The shape every network stream shares: a one-shot async iterator that closes itself.

A stream is its own iterator (like an async generator: iterating it again does not
start over), and once it ends, fails or is cancelled it closes its connections and
yields nothing more: an error mid-read leaves it out of step with the server.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

__all__ = ["OneShotStream"]


class OneShotStream:
    """Subclasses implement :meth:`_next_batch` (None at the end) and :meth:`aclose`."""

    _done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        try:
            batch = await self._next_batch()
        except BaseException:
            self._done = True
            await self.aclose()
            raise
        if batch is None:
            await self.aclose()
            raise StopAsyncIteration
        return batch

    async def _next_batch(self) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the connections; later iteration yields nothing."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
