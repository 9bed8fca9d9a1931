"""Which source reads a given ``x``, and the checks of the epoch iterator's options."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..sources.arrays import ArraySource
from ..sources.indexable import IndexableSource, is_indexable
from ..sources.iterables import AsyncIterableSource, SequenceSource, SyncIterableSource
from .source_protocol import Source

__all__ = ["check_options", "make_source"]

ROLES = ("train", "test", "evaluate", "validation", "predict")


def check_options(
    batch_size: int | None, steps: int | None, max_queue_size: int, workers: int, role: str
) -> None:
    """Raise a Keras-style ValueError for a bad pipeline option."""
    for name, value, allow_none in (
        ("batch_size", batch_size, True),
        ("steps_per_epoch", steps, True),
        ("max_queue_size", max_queue_size, False),
        ("workers", workers, False),
    ):
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}. Received: role={role!r}")


def make_source(
    x: Any,
    y: Any,
    sample_weight: Any,
    *,
    batch_size: int | None,
    shuffle: bool,
    rng: np.random.Generator | None,
    workers: int,
    class_weight: dict[int, float] | None,
    role: str,
    max_queue_size: int,
) -> Source:
    """The source for ``x`` (API.md "What x may be"); an :class:`ArraySource` built
    (and checked) once is reused with ``rng``."""
    if isinstance(x, ArraySource):
        return x.with_rng(rng if rng is not None else np.random.default_rng())
    if isinstance(x, np.ndarray) or (y is not None and isinstance(x, list | tuple)):
        if y is None and role != "predict":
            raise ValueError(f"y is required with array x when role={role!r}. Received: y=None")
        return ArraySource(
            x,
            y,
            sample_weight,
            batch_size=batch_size or 32,
            shuffle=shuffle,
            class_weight=class_weight,
            rng=rng,
        )
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None:
            raise ValueError(
                f"`{name}` can only be passed with array x; a {type(x).__name__} source "
                f"must yield it inside its batches. Received: {name} of type "
                f"{type(value).__name__}"
            )
    if isinstance(x, list | tuple):
        return SequenceSource(x)
    if is_indexable(x) and not isinstance(x, str | bytes):
        return IndexableSource(x, shuffle=shuffle, rng=rng, workers=workers)
    if hasattr(x, "__aiter__"):
        return AsyncIterableSource(x)
    if hasattr(x, "__iter__") and not isinstance(x, str | bytes | dict):
        return SyncIterableSource(x, lookahead=min(2, max_queue_size))
    raise TypeError(
        "x must be numpy arrays, an async or sync iterable of batches, or an indexable "
        f"dataset (__len__ and __getitem__ or aget). Received: x of type {type(x).__name__}"
    )
