"""``DataParallel``: synchronous data-parallel ``fit`` over MPI (Horovod's scheme).

One step on every rank: the compute thread runs the forward and backward pass
on the rank's rows (:meth:`Model.compute_gradients`) and packs, into one flat
buffer, the gradients, the batch's loss and metrics, each times the rank's row
count, and the row count; the event loop awaits one ``Iallreduce`` (sum) of that
buffer; the compute thread divides by the total rows and steps the optimizer
(:meth:`Model.apply_gradients`). Every rank applies the same averaged gradient
to the same weights, so the weights stay identical, and every rank's batch logs
are the global batch's. Keras's loss is a mean over the batch, so the
row-weighted mean of the ranks' mean gradients is the gradient of the global
batch's mean loss: N ranks with batch b step as one process with batch N * b.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..engine.strategy import FitInputs
from ..engine.worker_thread import WorkerThread
from .comm import Communicator
from .placement import for_rank
from .sharding import is_arrays, rank_rows, shard_source, take_rows

__all__ = ["DataParallel"]


class DataParallel:
    """Make ``fit`` data-parallel over the processes of an MPI job.

    Example:
        >>> strategy = aiofit.distributed.DataParallel()
        >>> history = await model.fit(x, y, batch_size=64, epochs=5, strategy=strategy)

    Run it under ``mpiexec -n 4 python -m mpi4py train.py``; as a plain
    process (a group of one) the same script trains exactly as without it.
    ``batch_size`` is per rank: a step of N ranks trains on ``N * batch_size``
    samples. See :mod:`aiofit.distributed` for the data, callbacks and failures.

    Args:
        comm: An ``mpi4py.MPI.Comm`` (default ``COMM_WORLD``).
        timeout: Seconds any collective may wait for the other ranks before
            :class:`~aiofit.distributed.CollectiveTimeoutError` (None: forever).
            It also covers the slowest rank's extra work: rank 0's checkpoint
            writes, a late start.

    Raises:
        ImportError: under ``mpiexec`` without mpi4py.
    """

    def __init__(self, comm: Any = None, *, timeout: float | None = 300.0) -> None:
        self.comm = Communicator(comm, timeout=timeout)
        self._slice_train = self._slice_val = False
        self._weights_synced = False
        self._names: list[str] = []
        self._buffer: np.ndarray | None = None

    @property
    def rank(self) -> int:
        """This process's rank (0 to ``size - 1``)."""
        return self.comm.rank

    @property
    def size(self) -> int:
        """How many processes train together."""
        return self.comm.size

    @property
    def is_primary(self) -> bool:
        """Whether this is rank 0, the one that prints and writes files."""
        return self.comm.rank == 0

    # -- the engine's hooks (aiofit.engine.strategy.Strategy) ---------------------------------

    def prepare(self, model: Any, inputs: FitInputs) -> FitInputs:
        """Shard the data by rank and keep printing and writing callbacks on rank 0."""
        rank, size = self.rank, self.size
        if size > 1 and not callable(getattr(model, "compute_gradients", None)):
            raise TypeError(
                "DataParallel trains models with compute_gradients() and apply_gradients() "
                f"(aiofit.Model). Received: a {type(model).__name__}"
            )
        self._weights_synced = False
        self._slice_train = is_arrays(inputs.x, inputs.y)
        x, batch_size = inputs.x, inputs.batch_size
        if self._slice_train:
            _check_rows(x, size)
            batch_size = (batch_size or 32) * size
        else:
            x = shard_source(x, rank, size)
        val, val_batch = inputs.validation_data, inputs.validation_batch_size
        self._slice_val = isinstance(val, tuple)
        if self._slice_val:
            val_batch = (val_batch or inputs.batch_size or 32) * size
        elif val is not None:
            val = shard_source(val, rank, size)
        return dataclasses.replace(
            inputs, x=x, batch_size=batch_size, validation_data=val,
            validation_batch_size=val_batch, callbacks=for_rank(inputs.callbacks, rank == 0),
            verbose=inputs.verbose if rank == 0 else 0,
        )  # fmt: skip

    async def begin(self, model: Any, worker: WorkerThread) -> None:
        """Every rank takes rank 0's rng states, optimizer state and (if built) weights."""
        if self.size == 1:
            return
        state = await self.comm.bcast(_state(model) if self.is_primary else None)
        if not self.is_primary:
            _set_state(model, state)
        self._weights_synced = state["weights"] is not None

    async def train_step(
        self, worker: WorkerThread, model: Any, x: Any, y: Any, sample_weight: Any
    ) -> dict[str, float]:
        """Local gradients, one allreduce of one buffer, the same step on every rank."""
        if self.size == 1:
            return await worker.run(model.train_on_batch, x, y, sample_weight)
        if not self._weights_synced:
            await self._sync_built_weights(worker, model, x)
        batch = (x, y, sample_weight)
        if self._slice_train:
            batch = take_rows(batch, rank_rows(len(x), self.rank, self.size))
        buffer = await worker.run(self._local_gradients, model, *batch)
        await self.comm.allreduce(buffer)
        logs = await worker.run(self._apply, model, buffer)
        if self._slice_train and len(x) % self.size:
            # Uneven rows drew uneven dropout masks: re-align the rngs that shuffle.
            await self._sync_rngs(model)
        return logs

    async def test_step(
        self, worker: WorkerThread, model: Any, x: Any, y: Any, sample_weight: Any
    ) -> dict[str, float]:
        """The global batch's validation logs: local logs, one small allreduce."""
        if self.size == 1:
            return await worker.run(model.test_on_batch, x, y, sample_weight)
        batch = (x, y, sample_weight)
        if self._slice_val:
            batch = take_rows(batch, rank_rows(len(x), self.rank, self.size))
        names = list(model.metrics_names)
        sums = np.zeros(len(names) + 1)
        rows = len(batch[0])
        if rows:
            logs = await worker.run(model.test_on_batch, *batch)
            sums[:-1] = [logs[name] * rows for name in names]
            sums[-1] = rows
        await self.comm.allreduce(sums)
        return {name: float(value / sums[-1]) for name, value in zip(names, sums, strict=False)}

    async def any_rank(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over the ranks."""
        return await self.comm.any(*flags)

    # -- steps (the compute thread) -----------------------------------------------------------

    def _local_gradients(self, model: Any, x: Any, y: Any, sample_weight: Any) -> np.ndarray:
        """``[rows * grads, rows * logs, rows]`` in the reused flat buffer."""
        rows = len(x)
        if rows == 0:  # the last global batch had fewer rows than there are ranks
            assert self._buffer is not None  # the first batch gives every rank a row
            self._buffer[:] = 0
            return self._buffer
        logs, grads = model.compute_gradients(x, y, sample_weight)
        if self._buffer is None:
            self._names = list(logs)
            self._buffer = np.empty(grads.size + len(logs) + 1, grads.dtype)
        buffer, size = self._buffer, grads.size
        np.multiply(grads, rows, out=buffer[:size])
        buffer[size:-1] = [logs[name] * rows for name in self._names]
        buffer[-1] = rows
        return buffer

    def _apply(self, model: Any, buffer: np.ndarray) -> dict[str, float]:
        size = buffer.size - len(self._names) - 1
        rows = float(buffer[-1])
        grads = buffer[:size]
        np.divide(grads, rows, out=grads)
        model.apply_gradients(grads)
        sums = buffer[size:-1].astype(np.float64)
        return {name: float(total / rows) for name, total in zip(self._names, sums, strict=True)}

    # -- keeping the ranks identical ------------------------------------------------------------

    async def _sync_built_weights(self, worker: WorkerThread, model: Any, x: Any) -> None:
        """Build an unbuilt model (drawing the same rng numbers as the step would), then
        take rank 0's weights."""
        if not getattr(model, "built", True):
            await worker.run(model.build, (None, *np.shape(x)[1:]))
        weights = await self.comm.bcast(model.get_weights() if self.is_primary else None)
        if not self.is_primary:
            model.set_weights(weights)
        self._weights_synced = True

    async def _sync_rngs(self, model: Any) -> None:
        states = await self.comm.bcast(_rng_states(model) if self.is_primary else None)
        if not self.is_primary:
            _set_rng_states(model, states)

    def __repr__(self) -> str:
        return f"<DataParallel rank {self.rank} of {self.size}>"


def _check_rows(x: Any, size: int) -> None:
    rows = len(x[0]) if isinstance(x, list | tuple) else len(x)
    if rows < size:
        raise ValueError(
            f"DataParallel over {size} ranks needs at least one sample per rank. "
            f"Received: {rows} samples"
        )


def _state(model: Any) -> dict[str, Any]:
    optimizer: Any = getattr(model, "optimizer", None)
    return {
        "rngs": _rng_states(model),
        "weights": model.get_weights() if getattr(model, "built", True) else None,
        "optimizer": optimizer.get_state() if getattr(optimizer, "built", False) else None,
    }


def _set_state(model: Any, state: dict[str, Any]) -> None:
    _set_rng_states(model, state["rngs"])
    if state["weights"] is not None:
        model.set_weights(state["weights"])
    if state["optimizer"] is not None:
        model.optimizer.set_state(state["optimizer"])


def _generators(model: Any) -> list[Any]:
    """``model.rng`` then each layer's own generator (dropout with a seed), by position."""
    shared = getattr(model, "rng", None)
    found: list[Any] = [shared if isinstance(shared, np.random.Generator) else None]
    for layer in getattr(model, "layers", []):
        rng = getattr(layer, "rng", None)
        own = isinstance(rng, np.random.Generator) and rng is not shared
        found.append(rng if own else None)
    return found


def _rng_states(model: Any) -> list[Any]:
    return [None if g is None else g.bit_generator.state for g in _generators(model)]


def _set_rng_states(model: Any, states: list[Any]) -> None:
    for generator, state in zip(_generators(model), states, strict=False):
        if generator is not None and state is not None:
            generator.bit_generator.state = state
