"""What the epoch iterator needs from a source and from one pass over it.

The sources in :mod:`aiofit.sources` (arrays, iterables, indexable datasets) all
satisfy these; a new kind of source (TCP, HTTP, Redis...) plugs in by doing the same.

A pass may also define ``skip(n)``: pass over its next ``n`` batches without reading
them (no fetch, no slicing). Resuming from a backup uses it when present (see
:mod:`aiofit.engine.source_position`).
"""

from __future__ import annotations

from typing import Any, Protocol

from anyio.abc import TaskGroup

__all__ = ["Pass", "Source"]


class Pass(Protocol):
    """One iteration over a source's data, opened by :meth:`Source.open_pass`."""

    checked: bool
    """True when batches come out already checked (arrays are checked once, up front)."""

    async def next(self, remaining: int | None = None) -> Any | None:
        """The next raw batch, or None when the pass is over.

        ``remaining`` is how many batches the epoch still wants (None: all): a
        source that reads ahead must not read past it.
        """
        ...

    async def aclose(self) -> None:
        """Release what the pass holds (close a generator, cancel fetches)."""
        ...


class Source(Protocol):
    """A kind of data, able to open passes over it."""

    in_memory: bool
    """Read directly by the engine's task: no producer task, no buffer."""
    one_shot: bool
    """Only one pass can ever be opened (an iterator, such as a generator)."""
    num_batches: int | None
    """Batches per pass when known."""

    async def open_pass(self, task_group: TaskGroup | None = None) -> Pass:
        """Start a pass; background work (fetches) runs in ``task_group``."""
        ...

    async def on_epoch_end(self) -> None:
        """Called after each epoch's last batch (an indexable dataset's hook)."""
        ...

    async def aclose(self) -> None:
        """Release everything (threads); called once, when the iterator exits."""
        ...
