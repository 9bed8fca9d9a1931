"""BackupAndRestore: a resumed fit ends bit-identical to one never interrupted.

The truth each test checks against is an uninterrupted run with the same seed:
its final weights (``np.array_equal``, every weight) and its History.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import aiofit
from aiofit import layers
from aiofit.callbacks import BackupAndRestore, Callback, CallbackList
from aiofit.engine.epoch_iterator import EpochIterator
from aiofit.engine.logs import WeightedMeans
from aiofit.engine.resume import ResumePoint, SourcePosition

from .conftest import Crash, CrashAt

CHILD = Path(__file__).with_name("_backup_child.py")
X = np.random.default_rng(7).normal(size=(50, 4)).astype("float32")
Y = (X[:, 0] > X[:, 1]).astype("int64") + (X[:, 2] > 0.5).astype("int64")


class Batches:
    """An indexable dataset of batches of 6; counts which items were fetched."""

    def __init__(self) -> None:
        self.fetched: list[int] = []

    def __len__(self) -> int:
        return -(-len(X) // 6)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        self.fetched.append(i)
        return X[i * 6 : (i + 1) * 6], Y[i * 6 : (i + 1) * 6]


def make_model() -> aiofit.Sequential:
    model = aiofit.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(8, activation="relu"), layers.Dropout(0.25),
         layers.Dense(3, activation="softmax")],
        seed=3,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(kind: str, callbacks: list[Callback], **kwargs: Any) -> tuple[list[np.ndarray], Any]:
    """Fit a fresh model for 4 epochs on ``kind`` data; its final weights and History."""
    model = make_model()
    data: Any = (X, Y) if kind == "arrays" else (Batches(),)
    if kind == "list":
        data = ([(X[i : i + 6], Y[i : i + 6]) for i in range(0, len(X), 6)],)
    options = {"epochs": 4, "verbose": 0, "shuffle": True, "batch_size": 6, **kwargs}
    history = aiofit.run(model.fit(*data, callbacks=callbacks, **options))
    return model.get_weights(), history


def crash_then_resume(
    kind: str, folder: Path, crash: tuple[int, int], save_freq: int | str, **kwargs: Any
) -> tuple[list[np.ndarray], Any]:
    with pytest.raises(Crash):
        train(kind, [BackupAndRestore(folder, save_freq=save_freq), CrashAt(*crash)], **kwargs)
    assert (folder / "backup.npz").is_file()
    return train(kind, [BackupAndRestore(folder, save_freq=save_freq)], **kwargs)


def assert_same_run(resumed: tuple[list[np.ndarray], Any], full: tuple[list[np.ndarray], Any],
                    first_epoch: int) -> None:  # fmt: skip
    (weights, history), (full_weights, full_history) = resumed, full
    assert all(np.array_equal(a, b) for a, b in zip(weights, full_weights, strict=True))
    assert history.epoch == full_history.epoch[first_epoch:]
    for key, values in full_history.history.items():
        assert history.history[key] == values[first_epoch:], key


# -- crash and resume, in process ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["arrays", "indexable", "list"])
@pytest.mark.parametrize(
    ("crash", "save_freq"),
    [((2, 5), 3), ((1, 8), 1), ((2, 3), "epoch"), ((0, 4), 2)],
    ids=["mid-epoch", "after-last-batch", "epoch", "first-epoch"],
)
def test_resumed_run_matches_uninterrupted(
    tmp_path: Path, kind: str, crash: tuple[int, int], save_freq: int | str
) -> None:
    full = train(kind, [])
    resumed = crash_then_resume(kind, tmp_path / "b", crash, save_freq)
    # 50 samples in batches of 6: 9 batches per epoch, so batch 8 is the last one.
    assert_same_run(resumed, full, crash[0])
    assert not (tmp_path / "b").exists()  # deleted once fit completed


@pytest.mark.parametrize("kind", ["arrays", "indexable"])
def test_resume_with_steps_per_epoch_spanning_passes(tmp_path: Path, kind: str) -> None:
    # 9 batches per pass, 3 per epoch: the pass the backup is in (after batch 1 of
    # epoch 2) began two epochs earlier; epoch 3 opens a fresh pass.
    full = train(kind, [], steps_per_epoch=3, validation_data=(X[:10], Y[:10]))
    resumed = crash_then_resume(
        kind, tmp_path, (2, 1), 2, steps_per_epoch=3, validation_data=(X[:10], Y[:10])
    )
    assert_same_run(resumed, full, 2)


def test_indexable_resume_skips_without_fetching(tmp_path: Path) -> None:
    full = Batches()
    aiofit.run(make_model().fit(full, epochs=2, verbose=0))
    crashing = [BackupAndRestore(tmp_path, 3), CrashAt(1, 6)]
    with pytest.raises(Crash):
        aiofit.run(make_model().fit(Batches(), epochs=2, verbose=0, callbacks=crashing))
    resumed = Batches()
    aiofit.run(make_model().fit(resumed, epochs=2, verbose=0,
                                callbacks=[BackupAndRestore(tmp_path, 3)]))  # fmt: skip
    # Backups after batches 2, 5, 8 (epoch 0) and 2, 5 (epoch 1): 6 batches of epoch 1 done,
    # and only the last 3 items of its shuffled order are fetched.
    assert resumed.fetched == full.fetched[9 + 6 :]


def test_iterable_resumes_at_epoch_start_with_a_warning(tmp_path: Path) -> None:
    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, len(X), 10):
            yield X[i : i + 10], Y[i : i + 10]

    class Again:
        def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            return batches()

    seen: list[tuple[int, int]] = []
    record = _Record(seen)
    crashing = [BackupAndRestore(tmp_path, 3), CrashAt(1, 3)]
    with pytest.raises(Crash):
        aiofit.run(make_model().fit(Again(), epochs=3, verbose=0, callbacks=crashing))
    # Backups every 3 batches, 5 per epoch: after (0, 2), (1, 0) and (1, 3), then the crash.
    resuming = [BackupAndRestore(tmp_path, 3), record]
    with pytest.warns(UserWarning, match="backup was taken 4 batches into epoch 2"):
        history = aiofit.run(make_model().fit(Again(), epochs=3, verbose=0, callbacks=resuming))
    assert history.epoch == [1, 2]
    assert seen[0] == (1, 0)  # the whole epoch again: an iterable cannot seek


class _Record(Callback):
    def __init__(self, seen: list[tuple[int, int]]) -> None:
        super().__init__()
        self.seen, self.epoch = seen, -1

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self.seen.append((self.epoch, batch))


def test_resumed_batches_are_numbered_on(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    with pytest.raises(Crash):
        train("arrays", [BackupAndRestore(tmp_path, 2), CrashAt(1, 4)])
    train("arrays", [BackupAndRestore(tmp_path, 2), _Record(seen)])
    # Backups every 2 batches across epochs: 9 in epoch 0, so after batches 0, 2, 4 of epoch 1.
    assert seen[:2] == [(1, 5), (1, 6)]
    assert seen[4:6] == [(2, 0), (2, 1)]


# -- the real thing: SIGKILL, in child processes ---------------------------------------------


def _child(*args: object) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, str(CHILD), *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)


def _load(path: Path) -> tuple[list[np.ndarray], dict[str, Any]]:
    with np.load(path) as data:
        weights = [data[f"w{i}"] for i in range(len(data.files) - 1)]
        return weights, json.loads(bytes(data["record"]))


@pytest.mark.parametrize("kind", ["arrays", "indexable"])
def test_sigkilled_process_resumes_bit_identically(tmp_path: Path, kind: str) -> None:
    backup = tmp_path / "backup"
    killed = _child(tmp_path / "never.npz", kind, backup, 2, 5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert (backup / "backup.npz").is_file()
    assert not (tmp_path / "never.npz").exists()
    resumed = _child(tmp_path / "resumed.npz", kind, backup)
    full = _child(tmp_path / "full.npz", kind)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert full.returncode == 0, full.stderr.decode()
    weights, record = _load(tmp_path / "resumed.npz")
    full_weights, full_record = _load(tmp_path / "full.npz")
    assert all(np.array_equal(a, b) for a, b in zip(weights, full_weights, strict=True))
    # 100 samples / 8 = 13 batches per epoch; a backup every 3 batches counted across
    # epochs (12 in epoch 0, 13 in epoch 1): the last before (2, 5) is after (2, 3).
    assert record["first"] == [2, 4]
    assert record["epochs"] == [2, 3]
    assert record["history"]["loss"] == full_record["history"]["loss"][2:]
    assert not backup.exists()


# -- what survives, what is deleted ----------------------------------------------------------


def test_error_keeps_backup_and_success_deletes_it(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        train("arrays", [BackupAndRestore(tmp_path / "b", "epoch"), CrashAt(1, 2)])
    assert (tmp_path / "b" / "backup.npz").is_file()
    train("arrays", [BackupAndRestore(tmp_path / "b", "epoch")])
    assert not (tmp_path / "b").exists()


def test_delete_checkpoint_false_keeps_the_final_backup(tmp_path: Path) -> None:
    train("arrays", [BackupAndRestore(tmp_path, "epoch", delete_checkpoint=False)])
    assert (tmp_path / "backup.npz").is_file()
    _, history = train("arrays", [BackupAndRestore(tmp_path, "epoch", delete_checkpoint=False)])
    assert history.epoch == []  # the backup says all 4 epochs are done, as in Keras


@pytest.mark.anyio
async def test_cancellation_keeps_backup(tmp_path: Path) -> None:
    cancelled = anyio.Event()

    class CancelAt(Callback):
        async def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 4:
                cancelled.set()
                await anyio.sleep_forever()

    async def fit() -> None:
        await make_model().fit(X, Y, batch_size=6, epochs=3, verbose=0,
                               callbacks=[BackupAndRestore(tmp_path, 2), CancelAt()])  # fmt: skip

    async with anyio.create_task_group() as tg:
        tg.start_soon(fit)
        await cancelled.wait()
        tg.cancel_scope.cancel()
    assert (tmp_path / "backup.npz").is_file()


# -- corrupt or foreign backups --------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04 truncated"])
def test_corrupt_backup_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "backup.npz").write_bytes(content)
    with pytest.raises(ValueError, match=r"corrupt or not an aiofit backup.*Received: "):
        train("arrays", [BackupAndRestore(tmp_path)])
    assert (tmp_path / "backup.npz").read_bytes() == content  # never deleted on an error


def test_backup_of_another_model_is_a_clear_error(tmp_path: Path) -> None:
    train("arrays", [BackupAndRestore(tmp_path, delete_checkpoint=False)], epochs=1)
    other = aiofit.Sequential([layers.Input(shape=(4,)), layers.Dense(2)], seed=0)
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="does not fit this model"):
        aiofit.run(other.fit(X, np.zeros((50, 2)), epochs=2, verbose=0,
                             callbacks=[BackupAndRestore(tmp_path)]))  # fmt: skip


def test_backup_from_different_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        train("arrays", [BackupAndRestore(tmp_path, 2), CrashAt(1, 2)])
    with pytest.raises(ValueError, match="9 batches per epoch.*Received: steps=5"):
        train("arrays", [BackupAndRestore(tmp_path, 2)], batch_size=10)


def test_stale_temp_file_of_a_killed_write_is_ignored_and_removed(tmp_path: Path) -> None:
    (tmp_path / ".backup.npz.x1y2.tmp").write_bytes(b"half written")
    train("arrays", [BackupAndRestore(tmp_path, "epoch")], epochs=1)
    assert not tmp_path.exists()


# -- arguments, lockstep, and the engine's pieces --------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"backup_dir": ""}, "Empty `backup_dir`"),
     ({"backup_dir": "d", "save_freq": 0}, "save_freq=0"),
     ({"backup_dir": "d", "save_freq": "batch"}, "save_freq='batch'"),
     ({"backup_dir": "d", "save_freq": True}, "save_freq=True")],
)  # fmt: skip
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BackupAndRestore(**kwargs)


def test_int_save_freq_puts_the_loop_in_lockstep(tmp_path: Path) -> None:
    assert not CallbackList([BackupAndRestore(tmp_path)]).overrides("on_train_batch_end")
    assert CallbackList([BackupAndRestore(tmp_path, 3)]).overrides("on_train_batch_end")
    model = make_model()
    steps: list[int] = []
    seen_at_backup: list[int] = []
    train_on_batch, get_weights = model.train_on_batch, model.get_weights

    def counting_step(*args: Any, **kwargs: Any) -> Any:
        steps.append(1)
        return train_on_batch(*args, **kwargs)

    def watched_weights() -> list[np.ndarray]:
        seen_at_backup.append(len(steps))
        return get_weights()

    model.train_on_batch = counting_step  # type: ignore[method-assign]
    model.get_weights = watched_weights  # type: ignore[method-assign]
    aiofit.run(model.fit(X, Y, batch_size=6, epochs=2, verbose=0,
                         callbacks=[BackupAndRestore(tmp_path, 3)]))  # fmt: skip
    # No step ran ahead of any backup: each saw exactly the steps trained so far.
    assert seen_at_backup == [3, 6, 9, 12, 15, 18]


def test_resume_point_round_trips_through_json() -> None:
    state = dict(np.random.default_rng(5).bit_generator.state)
    point = ResumePoint(2, 5, {"loss": 1.0000000000000002}, {"loss": 30}, 9,
                        SourcePosition(state, state, 14))  # fmt: skip
    assert ResumePoint.from_dict(json.loads(json.dumps(point.to_dict()))) == point
    assert ResumePoint.from_dict(ResumePoint(0).to_dict()) == ResumePoint(0)


@pytest.mark.parametrize(
    "bad", [{}, {"epoch": -1}, None, {**ResumePoint(1).to_dict(), "batches": "3"}]
)
def test_malformed_resume_point(bad: Any) -> None:
    with pytest.raises(ValueError, match="Not a valid resume point.*Received"):
        ResumePoint.from_dict(bad)


def test_weighted_means_restore_continues_exactly() -> None:
    batches = [({"loss": 0.1 * i, "acc": 1 / (i + 3)}, 6 + i) for i in range(7)]
    whole, first, rest = WeightedMeans(), WeightedMeans(), WeightedMeans()
    for logs, size in batches:
        whole.add(logs, size)
    for logs, size in batches[:3]:
        first.add(logs, size)
    rest.restore(*first.state())
    for logs, size in batches[3:]:
        rest.add(logs, size)
    assert rest.result() == whole.result()
    with pytest.raises(ValueError, match="same keys"):
        rest.restore({"loss": 1.0}, {})


@pytest.mark.anyio
@pytest.mark.parametrize("steps", [None, 3])
async def test_epoch_iterator_seek_serves_the_remaining_batches(steps: int | None) -> None:
    def iterator(rng: np.random.Generator) -> EpochIterator:
        return EpochIterator(X, Y, batch_size=6, shuffle=True, rng=rng, steps_per_epoch=steps)

    async with iterator(np.random.default_rng(11)) as data:
        for epoch in range(2):
            async for _ in data.epoch(epoch):
                pass
        got = 0
        async for _ in data.epoch(2):
            got += 1
            if got == 2:
                break
        position = data.position(2, epoch_over=False)  # the backup: 2 batches into epoch 2
    assert position is not None
    assert position.pass_rng_state is not None
    async with iterator(np.random.default_rng(999)) as data:  # another state: seek sets it
        data.seek(position, 2)
        tail = [x async for x, _, _ in data.epoch(2)]
    async with iterator(np.random.default_rng(11)) as data:
        expected = [[x async for x, _, _ in data.epoch(e)] for e in range(3)][2][2:]
    assert len(tail) == len(expected) > 0
    assert all(np.array_equal(a, b) for a, b in zip(tail, expected, strict=True))


@pytest.mark.anyio
async def test_iterable_reports_no_position() -> None:
    async with EpochIterator(iter([(X, Y)])) as data:
        assert data.position(0, epoch_over=False) is None
        with pytest.raises(ValueError, match="can seek.*Received: a SyncIterableSource"):
            data.seek(SourcePosition(None), 0)
