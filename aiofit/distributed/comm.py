"""MPI collectives awaited from the event loop, and the single-process stand-in.

Every collective here is MPI's non-blocking variant (``Iallreduce``, ``Ibcast``),
completed by polling ``Request.Test()`` from the event loop: ``await
anyio.sleep(0)`` between polls for the first :data:`SPIN_SECONDS` (MPICH makes
progress only inside MPI calls, so polling often is what moves a large
allreduce along), then :data:`BACKOFF_SECONDS` sleeps, so a peer that is late
by seconds costs this process little CPU. Other tasks on the loop run between
polls; MPICH's asynchronous progress thread is never used.

A collective that has not completed after ``timeout`` seconds raises
:class:`CollectiveTimeoutError`, so a process whose peer died (without the
launcher noticing) does not wait forever.
"""

from __future__ import annotations

import os
import pickle
import time
from typing import Any

import anyio
import numpy as np

__all__ = [
    "BACKOFF_SECONDS",
    "SPIN_SECONDS",
    "CollectiveTimeoutError",
    "Communicator",
    "launched_by_mpi",
    "load_mpi",
]

#: Poll with zero sleeps this long before backing off.
SPIN_SECONDS = 0.0005
#: The sleep between polls after that: bounds the delay added to a late collective.
BACKOFF_SECONDS = 0.0005
# Set by mpiexec/mpirun/srun of MPICH (Hydra), Open MPI, Intel MPI and PMIx.
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                       "MPI_LOCALNRANKS")  # fmt: skip
INSTALL_HINT = 'pip install "aiofit[mpi]" (mpi4py and the mpich wheel)'


class CollectiveTimeoutError(RuntimeError):
    """A collective did not complete in time: a peer process is gone or stuck."""


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``, ``srun``...)."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def load_mpi() -> Any | None:
    """``mpi4py.MPI`` (initialising MPI), or None in a plain process without mpi4py.

    Raises:
        ImportError: mpi4py is missing but an MPI launcher started this process,
            where running alone would silently train N unrelated models.
    """
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if launched_by_mpi():
            raise ImportError(
                f"aiofit.distributed needs mpi4py under mpiexec: {INSTALL_HINT}. "
                f"Received: ImportError: {exc}"
            ) from exc
        return None
    return MPI


class Communicator:
    """One group of processes (an MPI communicator), with awaitable collectives.

    Args:
        comm: An ``mpi4py.MPI.Comm`` (default ``COMM_WORLD``); without mpi4py in a
            plain process, a group of one.
        timeout: Seconds a collective may take before
            :class:`CollectiveTimeoutError`; None waits forever.
    """

    def __init__(self, comm: Any = None, *, timeout: float | None = 300.0) -> None:
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"timeout must be a positive number or None. Received: {timeout!r}")
        self.timeout = timeout
        self._mpi: Any = load_mpi() if comm is None else _module_of(comm)
        if comm is None and self._mpi is not None:
            comm = self._mpi.COMM_WORLD
        self._comm = comm
        self.rank: int = 0 if comm is None else comm.Get_rank()
        self.size: int = 1 if comm is None else comm.Get_size()

    async def allreduce(self, buffer: np.ndarray, op: str = "sum") -> None:
        """Reduce ``buffer`` in place over every process (``op``: "sum" or "max")."""
        if self.size == 1:
            return
        mpi_op = {"sum": self._mpi.SUM, "max": self._mpi.MAX}[op]
        await self._complete(self._comm.Iallreduce(self._mpi.IN_PLACE, buffer, op=mpi_op),
                             f"allreduce of {buffer.size} values")  # fmt: skip

    async def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over every process."""
        values = np.array(flags, np.int32)
        await self.allreduce(values, "max")
        return tuple(bool(v) for v in values)

    async def bcast(self, obj: Any, root: int = 0) -> Any:
        """``root``'s ``obj`` on every process (pickled: peers of one job trust each other)."""
        if self.size == 1:
            return obj
        length = np.zeros(1, np.int64)
        payload = np.zeros(0, np.uint8)
        if self.rank == root:
            payload = np.frombuffer(pickle.dumps(obj, protocol=5), np.uint8)
            length[0] = payload.size
        await self._complete(self._comm.Ibcast(length, root=root), "broadcast")
        if self.rank != root:
            payload = np.empty(int(length[0]), np.uint8)
        await self._complete(self._comm.Ibcast(payload, root=root), "broadcast")
        return obj if self.rank == root else pickle.loads(payload.tobytes())

    async def _complete(self, request: Any, what: str) -> None:
        start = time.monotonic()
        while not request.Test():
            waited = time.monotonic() - start
            if self.timeout is not None and waited > self.timeout:
                raise CollectiveTimeoutError(
                    f"Rank {self.rank} of {self.size}: the {what} did not complete within "
                    f"{self.timeout:g} s; a peer process has died or is stuck. Received: "
                    f"timeout={self.timeout!r}"
                )
            await anyio.sleep(0 if waited < SPIN_SECONDS else BACKOFF_SECONDS)

    def __repr__(self) -> str:
        return f"<Communicator rank={self.rank} size={self.size}>"


def _module_of(comm: Any) -> Any:
    from mpi4py import MPI

    if not isinstance(comm, MPI.Comm):
        raise TypeError(f"comm must be an mpi4py.MPI.Comm. Received: {comm!r}")
    return MPI
