"""Data-parallel training over MPI: ``fit(..., strategy=DataParallel())``.

Install ``pip install "aiofit[mpi]"`` (mpi4py and the ``mpich`` wheel, which brings
``mpiexec``: no system packages). The code uses only standard MPI calls, so a
cluster's own MPI (Open MPI, Intel MPI, a vendor MPICH) works as well: build mpi4py
against it (``pip install --no-binary mpi4py mpi4py`` with its ``mpicc`` on PATH)
and leave out the ``mpich`` wheel. Launch with::

    mpiexec -n 4 python -m mpi4py train.py
    mpiexec -n 8 -f hosts python -m mpi4py train.py     # MPICH; Open MPI: --hostfile hosts

``-m mpi4py`` makes an uncaught exception on any rank print its traceback and call
``MPI_Abort``, which ends every rank of the job at once. Without ``mpiexec`` the
same script is a group of one and trains exactly as without the strategy.

Design (Horovod's synchronous data parallelism, awaited from the event loop):

* **Start**: after ``on_train_begin`` (so after a ``BackupAndRestore`` restore)
  every rank takes rank 0's weights, optimizer state and rng states (a broadcast),
  so all ranks shuffle alike and start from the same weights.
* **Data** (:mod:`aiofit.distributed.sharding`): ``batch_size`` is per rank. Arrays:
  every rank batches the whole arrays by ``N * batch_size`` in the same order and
  trains on its slice of each global batch. Indexable datasets and lists of
  batches: rank ``r`` takes batches ``r, r + N, ...`` (the last ``len % N`` are left
  out each pass). Streams: pass each rank its own (``rank()`` picks it); an epoch
  ends on every rank when the first rank's stream ends.
* **Step** (:class:`DataParallel`): gradients of every layer, the batch's loss
  and metrics and the row count go in one flat buffer, reduced by one
  ``Iallreduce`` per step that the event loop polls with ``Test()`` (zero sleeps,
  then 0.5 ms sleeps after 3 ms); the numpy work stays on the compute thread. The
  average is weighted by rows, so N ranks with batch b give the weights of one
  process with batch N * b (to float32 rounding), and every rank's batch and epoch
  logs, validation included, are the global ones.
* **Callbacks** (:mod:`aiofit.distributed.placement`): all run on every rank and,
  seeing the same logs, decide alike, except those that print or write
  (``ProgbarLogger``, ``ModelCheckpoint``, ``CSVLogger``, ``PlotHistory``,
  ``RemoteMonitor``), which run on rank 0 only; elsewhere ``BackupAndRestore``
  only restores (keep its folder on a shared file system). Your own callbacks
  that write should check :func:`is_primary`.
* **Stopping**: before every batch and after every epoch the ranks agree (a small
  allreduce) whether any rank set ``stop_training`` or ran out of data; then all
  stop at the same batch.
* **Failures**: an exception on one rank ends the job through ``-m mpi4py``'s
  ``MPI_Abort``, its traceback printed once, by that rank. A rank killed with
  SIGKILL is noticed by MPICH's ``mpiexec`` (Hydra), which kills the others within
  about a second. Where a launcher does not notice, every collective has a
  ``timeout`` (300 s by default): a rank waiting longer raises
  :class:`CollectiveTimeoutError`, which aborts the job.

Not synchronised: ``BatchNormalization`` uses each rank's batch statistics, and its
moving statistics are each rank's own (rank 0's are the ones saved); ``Dropout``
masks are drawn per rank, so runs with dropout equal no single-process run.
"""

from __future__ import annotations

from .comm import CollectiveTimeoutError, Communicator, launched_by_mpi
from .sharding import ShardedDataset
from .strategy import DataParallel

__all__ = [
    "CollectiveTimeoutError",
    "Communicator",
    "DataParallel",
    "ShardedDataset",
    "is_primary",
    "launched_by_mpi",
    "rank",
    "size",
]

_world: Communicator | None = None


def _default() -> Communicator:
    global _world
    if _world is None:
        _world = Communicator()
    return _world


def rank() -> int:
    """This process's rank in ``MPI.COMM_WORLD`` (0 in a plain process)."""
    return _default().rank


def size() -> int:
    """The number of processes in ``MPI.COMM_WORLD`` (1 in a plain process)."""
    return _default().size


def is_primary() -> bool:
    """Whether this is rank 0: the process that prints and writes files."""
    return rank() == 0
