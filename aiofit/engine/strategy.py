"""The hook through which a strategy (data parallelism) takes over parts of ``fit``.

``fit(..., strategy=s)`` hands ``s`` four moments, and otherwise runs as usual:

1. :meth:`Strategy.prepare`, before anything is opened: it may replace the data,
   the batch sizes, the callbacks and ``verbose`` (e.g. shard the data by rank, and
   keep progress bars and file writers on one process only).
2. :meth:`Strategy.begin`, after ``on_train_begin`` (so after a backup was
   restored) and before the first epoch opens its data: e.g. make every process
   start from the same weights and rng states.
3. :meth:`Strategy.train_step` and :meth:`Strategy.test_step` replace the model's
   ``train_on_batch`` / ``test_on_batch``: they are awaited on the event loop and run
   the numpy work on the engine's compute worker themselves. The batch loop runs in
   lockstep then (one step at a time).
4. :meth:`Strategy.any_rank` is asked, before every batch and at each epoch's end,
   whether any participant wants to stop or has no batch, so that all of them end
   an epoch, and the run, at the same batch: nobody waits for a peer that left.

:mod:`aiofit.distributed` implements it over MPI; the engine knows nothing of MPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .worker_thread import WorkerThread

__all__ = ["FitInputs", "Strategy"]


@dataclass(frozen=True)
class FitInputs:
    """The ``fit`` arguments a strategy may replace in :meth:`Strategy.prepare`."""

    x: Any
    y: Any
    sample_weight: Any
    batch_size: int | None
    validation_data: Any
    validation_batch_size: int | None
    callbacks: list[Any]
    verbose: int


@runtime_checkable
class Strategy(Protocol):
    """What ``fit(..., strategy=...)`` calls; see the module docstring for when."""

    def prepare(self, model: Any, inputs: FitInputs) -> FitInputs:
        """The inputs ``fit`` goes on with (``verbose`` is already resolved to 0, 1 or 2)."""
        ...

    async def begin(self, model: Any, worker: WorkerThread) -> None:
        """Called once after ``on_train_begin``, before the first epoch."""
        ...

    async def train_step(
        self, worker: WorkerThread, model: Any, x: Any, y: Any, sample_weight: Any
    ) -> dict[str, float]:
        """One training step on one batch; returns the batch's logs."""
        ...

    async def test_step(
        self, worker: WorkerThread, model: Any, x: Any, y: Any, sample_weight: Any
    ) -> dict[str, float]:
        """One validation step on one batch; returns the batch's logs."""
        ...

    async def any_rank(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over every participant (all of them call it together)."""
        ...
