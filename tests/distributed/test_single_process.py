"""``aiofit.distributed`` without mpiexec, and its pieces that need no peers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aiofit
from aiofit.callbacks import BackupAndRestore, CSVLogger, EarlyStopping, ModelCheckpoint
from aiofit.distributed.placement import RestoreOnly, for_rank
from aiofit.distributed.sharding import ShardedDataset, rank_rows, shard_source

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mpi import needs_mpi  # noqa: E402
from _scenario import data, fit_kwargs, model  # noqa: E402


@needs_mpi
def test_a_group_of_one_trains_bit_identically_to_plain_fit() -> None:
    from aiofit.distributed import DataParallel

    strategy = DataParallel()
    assert (strategy.rank, strategy.size, strategy.is_primary) == (0, 1, True)
    x, y, _, _ = data()
    nets, histories = [], []
    for extra in ({"strategy": strategy}, {}):
        net = model("adam", "float32")
        histories.append(aiofit.run(net.fit(x, y, **fit_kwargs(16), **extra)).history)
        nets.append(net)
    for a, b in zip(nets[0].get_weights(), nets[1].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert histories[0] == histories[1]


def test_rank_rows_split_a_batch_in_order_and_balanced() -> None:
    parts = [rank_rows(11, r, 2) for r in range(2)]
    assert parts == [slice(0, 5), slice(5, 11)]
    assert [len(range(11)[rank_rows(3, r, 4)]) for r in range(4)] == [0, 1, 1, 1]


class Batches:
    def __init__(self, n: int) -> None:
        self.n, self.ended = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i

    def on_epoch_end(self) -> None:
        self.ended += 1


class AsyncBatches(Batches):
    async def aget(self, i: int) -> int:
        return i


def test_an_indexable_dataset_is_strided_by_rank_and_the_remainder_left_out() -> None:
    dataset = Batches(11)
    shards = [shard_source(dataset, r, 3) for r in range(3)]
    assert [[s[i] for i in range(len(s))] for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(IndexError, match="Received: 3 of 3"):
        shards[0][3]
    shards[1].on_epoch_end()
    assert dataset.ended == 1


@pytest.mark.anyio
async def test_an_async_dataset_keeps_aget() -> None:
    shard: Any = ShardedDataset.of(AsyncBatches(4), 1, 2)
    assert [await shard.aget(i) for i in range(len(shard))] == [1, 3]


def test_lists_of_batches_shard_and_streams_stay_per_rank() -> None:
    assert shard_source(list(range(7)), 1, 3) == [1, 4]
    stream: Any = iter([1, 2])
    assert shard_source(stream, 1, 3) is stream
    with pytest.raises(ValueError, match="fewer batches than there are ranks.*Received: 2"):
        shard_source([0, 1], 0, 3)


def test_writers_run_on_rank_0_only_and_backups_restore_everywhere(tmp_path: Path) -> None:
    backup, stopper = BackupAndRestore(str(tmp_path / "b")), EarlyStopping()
    callbacks = [CSVLogger(str(tmp_path / "log.csv")), backup,
                 ModelCheckpoint(str(tmp_path / "m.aiofit")), stopper]  # fmt: skip
    assert for_rank(callbacks, primary=True) == callbacks
    others = for_rank(callbacks, primary=False)
    assert len(others) == 2
    assert others[1] is stopper
    assert isinstance(others[0], RestoreOnly)
    assert others[0].backup is backup
