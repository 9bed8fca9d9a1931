"""In-memory numpy arrays, batched by ``batch_size`` and reshuffled per epoch.

The arrays are checked once, whole, when the source is built (the same checks as
every batch gets, but paid once rather than per batch per epoch), so slicing a
batch is all that happens per step. Everything here is synchronous and in memory:
the epoch iterator pulls these batches directly, without a producer task.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from anyio.abc import TaskGroup

from ..nn.validation import check_arrays, class_weight_to_sample_weight

__all__ = ["ArrayPass", "ArraySource"]

Batch = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


class ArraySource:
    """``(x, y, sample_weight)`` arrays cut into batches of ``batch_size``.

    Args:
        x: input array, first axis = samples.
        y: target array with as many samples, or None (prediction only).
        sample_weight: per-sample weights of shape ``(n,)``, or None.
        batch_size: samples per batch; the last batch may be smaller.
        shuffle: draw a new permutation from ``rng`` at the start of each pass.
        class_weight: dict class index -> weight, folded into the sample weights.
        rng: the generator used for shuffling.

    Raises:
        aiofit.DataError: the arrays are malformed (checked once, up front).
    """

    one_shot = False
    in_memory = True

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        batch_size: int = 32,
        shuffle: bool = False,
        class_weight: dict[int, float] | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        where = "the arrays passed as x/y/sample_weight"
        self.x, self.y, sw = check_arrays(x, y, sample_weight, where=where)
        if class_weight is not None and self.y is not None:
            sw = class_weight_to_sample_weight(self.y, class_weight, sw, where=where)
        self.sample_weight = sw
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = rng if rng is not None else np.random.default_rng()
        self.num_samples = int(self.x.shape[0])
        self.num_batches: int | None = -(-self.num_samples // batch_size)

    def with_rng(self, rng: np.random.Generator) -> ArraySource:
        """The same checked arrays and options, shuffled from ``rng``: a server
        gives each connection its own source without checking the arrays again."""
        twin = copy.copy(self)
        twin.rng = rng
        return twin

    async def open_pass(self, task_group: TaskGroup | None = None) -> ArrayPass:
        """Start a new pass over all samples (a fresh permutation when shuffling)."""
        order = self.rng.permutation(self.num_samples) if self.shuffle else None
        return ArrayPass(self, order)

    async def on_epoch_end(self) -> None:
        """Arrays have no epoch hook."""

    async def aclose(self) -> None:
        """Nothing to release: present so every source closes the same way."""


class ArrayPass:
    """One pass over an :class:`ArraySource`; batches are already checked."""

    checked = True

    def __init__(self, source: ArraySource, order: np.ndarray | None) -> None:
        self._source = source
        self._order = order
        self._next = 0

    def skip(self, count: int) -> None:
        """Start this pass ``count`` batches in, slicing none of them (for resuming)."""
        self._next += count

    async def next(self, remaining: int | None = None) -> Batch | None:
        """The next batch, or None when the pass is over."""
        return self.next_nowait()

    def next_nowait(self) -> Batch | None:
        """The next batch without a checkpoint (pure slicing), or None at the end."""
        src = self._source
        start = self._next * src.batch_size
        if start >= src.num_samples:
            return None
        self._next += 1
        stop = start + src.batch_size
        sel: slice | np.ndarray = slice(start, stop)
        if self._order is not None:
            sel = self._order[start:stop]
        return (
            src.x[sel],
            None if src.y is None else src.y[sel],
            None if src.sample_weight is None else src.sample_weight[sel],
        )

    async def aclose(self) -> None:
        """Nothing to release."""
