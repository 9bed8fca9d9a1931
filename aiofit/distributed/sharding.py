"""Which part of the data each rank trains on.

* **Arrays** (``x``, ``y``, ``sample_weight``): every rank batches the whole
  arrays by the *global* batch ``size * batch_size``, in the same shuffled order
  (the ranks' rngs are in sync), and trains on its own rows of each global
  batch: :func:`rank_rows`. A step of N ranks is then exactly a step of one
  process with batch ``N * batch_size``, shuffling, ``class_weight`` and the last,
  shorter batch included (the gradient average is weighted by rows).
* **Indexable datasets** and **lists of batches**: rank ``r`` takes batches
  ``r, r + N, r + 2N, ...`` (:class:`ShardedDataset`), so each batch is fetched by
  one rank only. Every rank gets ``len(dataset) // N`` batches: the last
  ``len(dataset) % N`` batches of each pass are left out (other ones each epoch
  when shuffled).
* **Streams** (async or sync iterables, network sources): left as they are. Each
  rank must be given its own stream (e.g. ``TCPSource`` to a per-rank port); an
  epoch ends on every rank when the first rank's stream ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..sources.indexable import is_indexable

__all__ = ["ShardedDataset", "is_arrays", "rank_rows", "shard_source", "take_rows"]


def is_arrays(x: Any, y: Any) -> bool:
    """Whether ``fit`` reads ``x`` as in-memory arrays (as the engine decides)."""
    return isinstance(x, np.ndarray) or (y is not None and isinstance(x, list | tuple))


def rank_rows(rows: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s rows of a global batch of ``rows``: balanced, in rank order."""
    return slice(rank * rows // size, (rank + 1) * rows // size)


def take_rows(batch: tuple[Any, ...], rows: slice) -> tuple[Any, ...]:
    """``rows`` of every array of ``batch`` (None stays None)."""
    return tuple(None if a is None else a[rows] for a in batch)


def shard_source(x: Any, rank: int, size: int) -> Any:
    """Rank ``rank``'s share of a non-array source (see the module docstring).

    Raises:
        ValueError: the source has fewer batches than there are ranks.
    """
    if size == 1:
        return x
    if isinstance(x, list | tuple):
        per_rank = _per_rank(len(x), size, "list of batches")
        return list(x[rank : per_rank * size : size])
    if is_indexable(x) and not isinstance(x, str | bytes | dict):
        return ShardedDataset.of(x, rank, size)
    return x


class ShardedDataset:
    """Rank ``rank``'s batches ``rank, rank + size, ...`` of an indexable dataset.

    Built by :meth:`of`, which keeps the dataset's ``aget`` and ``on_epoch_end``.

    Example:
        >>> shard = ShardedDataset.of(dataset, rank=1, size=4)   # batches 1, 5, 9, ...
    """

    def __init__(self, dataset: Any, rank: int, size: int) -> None:
        self.dataset, self.rank, self.size = dataset, rank, size
        _per_rank(len(dataset), size, "indexable dataset")

    @classmethod
    def of(cls, dataset: Any, rank: int, size: int) -> ShardedDataset:
        """The shard of ``dataset`` with the same ``aget``/``on_epoch_end`` abilities."""
        shard = (_AsyncShardedDataset if hasattr(dataset, "aget") else cls)(dataset, rank, size)
        hook = getattr(dataset, "on_epoch_end", None)
        if hook is not None:
            shard.on_epoch_end = hook  # type: ignore[attr-defined]  # sync or async, as given
        return shard

    def __len__(self) -> int:
        return len(self.dataset) // self.size

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self._global(index)]

    def _global(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"shard index out of range. Received: {index} of {len(self)}")
        return index * self.size + self.rank

    def __repr__(self) -> str:
        return f"<ShardedDataset rank {self.rank} of {self.size}: {len(self)} batches>"


class _AsyncShardedDataset(ShardedDataset):
    async def aget(self, index: int) -> Any:
        return await self.dataset.aget(self._global(index))


def _per_rank(batches: int, size: int, what: str) -> int:
    if batches < size:
        raise ValueError(
            f"The {what} has fewer batches than there are ranks ({size}): some rank "
            f"would have none. Received: {batches} batches"
        )
    return batches // size
