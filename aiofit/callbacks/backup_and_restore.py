"""``BackupAndRestore``: rerun a crashed ``fit`` and it goes on where its last backup was taken.

The backup is one file, ``<backup_dir>/backup.npz``, rewritten in place with
:func:`aiofit._atomic.atomic_write`, so a crash at any instant (SIGKILL included)
leaves either the previous backup or the new one, never a torn file. It is a numpy
``.npz`` archive (no pickle) holding:

* ``__backup__``: a JSON document (as uint8 bytes): a format marker and version,
  the engine's :class:`~aiofit.engine.resume.ResumePoint` (epoch, batches of it
  trained, the epoch's running means, the source's position and the rng states
  it needs), the state of ``model.rng`` and of each layer's own generator, and
  the optimizer state's scalars;
* ``weight_<i>``: ``model.get_weights()`` in order;
* ``optimizer_<name>``: the optimizer state's arrays.

Restoring goes through the engine's :class:`~aiofit.engine.resume.FitProgress`
(read that module for the mechanism): on a rerun, ``on_train_begin`` puts the
weights, optimizer and rng states back, and asks the engine to resume at the saved
point. For numpy arrays, indexable datasets and lists of batches the run then goes
on bit-identically, mid-epoch included: the same shuffled order, the same dropout
masks, the same final weights as a run never interrupted. Iterables and generators
cannot seek to a position: they resume at the start of the backup's epoch (with a
warning when the backup was taken in the middle of it).

Self-positioning streams (:func:`aiofit.sources.from_redis_stream`) resume exactly
too: their state (the last trained entry id) is part of the resume point, so it is
written atomically with the weights, optimizer and rng states. After each backup is
durable (fsynced and renamed), the callback awaits
:meth:`~aiofit.engine.resume.FitProgress.commit`, and only then does the stream
acknowledge the entries the backup covers. When ``fit`` completes, a final backup
is written and committed before it is deleted, so every trained entry is
acknowledged and a crash at any instant in between loses or repeats nothing.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import zipfile
import zlib
from typing import Any

import anyio
import numpy as np

from .._atomic import atomic_write, check_writable_dir
from ..engine.resume import FitProgress, ResumePoint
from .base import Callback, Logs

__all__ = ["BackupAndRestore"]

FORMAT = "aiofit.backup"
VERSION = 1
FILENAME = "backup.npz"
_HEADER = "__backup__"
# Damaged or foreign files raise these from numpy, zipfile, json or the header checks.
_CORRUPT = (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, TypeError, zlib.error)
_BATCH_END = "on_train_batch_end"


class BackupAndRestore(Callback):
    """Back up the training state; a rerun of the same ``fit`` resumes from the backup.

    As Keras's ``BackupAndRestore``: the backup holds the weights and the epoch
    counter, and here also the batch counter, the optimizer state, every rng
    state and the data's position, so the resumed run ends with the very weights
    an uninterrupted run would have. The backup survives an error, a
    cancellation or a killed process; it is deleted only after ``fit`` has run
    to its end (with ``delete_checkpoint=True``). The model, ``compile`` and the
    ``fit`` arguments must be the same on the rerun.

    Args:
        backup_dir: Folder for the backup (created if needed); keep it for this
            run alone.
        save_freq: ``"epoch"`` to back up at the end of each epoch, or an int
            ``N`` to back up every ``N`` batches (counted across epochs). With an
            int the loop runs in lockstep (each step awaited before the next), so
            every backup sees a consistent state.
        delete_checkpoint: Delete the backup once ``fit`` completes.

    Raises:
        ValueError: for an empty ``backup_dir`` or a bad ``save_freq``; from
            ``fit``, when the backup is corrupt or does not fit the model.

    Example:
        >>> backup = aiofit.callbacks.BackupAndRestore("/tmp/run1", save_freq=100)
        >>> await model.fit(x, y, epochs=10, callbacks=[backup])  # rerun after a crash
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str | int = "epoch",
        delete_checkpoint: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(backup_dir, str | os.PathLike) or not os.fspath(backup_dir):
            raise ValueError(f"Empty `backup_dir` argument passed. Received: {backup_dir!r}")
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                "Invalid value for argument `save_freq`: expected 'epoch' or an integer "
                f">= 1. Received: save_freq={save_freq!r}"
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self.path = os.path.join(self.backup_dir, FILENAME)
        self._progress: FitProgress | None = None
        self._since_save = 0
        self._epoch = 0
        if save_freq != "epoch":
            # Only then a batch hook: with "epoch" the loop may queue steps ahead.
            setattr(self, _BATCH_END, self._on_batch_end)

    def set_progress(self, progress: FitProgress) -> None:
        """Called by ``fit`` before ``on_train_begin`` (see :mod:`aiofit.engine.resume`)."""
        self._progress = progress

    async def on_train_begin(self, logs: Logs | None = None) -> None:
        """Restore the backup if there is one, and ask the engine to resume from it."""
        self._since_save, self._epoch = 0, 0
        point = await anyio.to_thread.run_sync(self._restore)
        if point is not None:
            self._epoch = point.epoch
            if self._progress is not None:
                self._progress.request_resume(point)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Track the epoch (for a callback driven by hand, without the engine)."""
        self._epoch = epoch

    async def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Back up when ``save_freq="epoch"``: a rerun starts at the next epoch."""
        if self.save_freq == "epoch":
            await self._save(ResumePoint(epoch + 1))

    async def _on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._since_save += 1
        if self._since_save >= int(self.save_freq):
            self._since_save = 0
            await self._save(ResumePoint(self._epoch, batch + 1))

    async def on_train_end(self, logs: Logs | None = None) -> None:
        """Delete the backup, only if ``fit`` completed and ``delete_checkpoint`` is set."""
        progress, self._progress = self._progress, None
        completed = progress is None or progress.completed  # by hand: as Keras
        if completed and progress is not None:
            final = progress.snapshot()
            if final.source is not None and final.source.stream is not None:
                # A stream acks only what a durable backup covers: back up the end first.
                await self._write_and_commit(progress, final)
        if completed and self.delete_checkpoint:
            await anyio.to_thread.run_sync(self._delete)

    async def _save(self, fallback: ResumePoint) -> None:
        # Collected here, between steps (copies); written in a thread.
        if self._progress is None:
            arrays = _collect(self.model, fallback)
            await anyio.to_thread.run_sync(self._write, arrays)
        else:
            await self._write_and_commit(self._progress, self._progress.snapshot())

    async def _write_and_commit(self, progress: FitProgress, point: ResumePoint) -> None:
        arrays = _collect(self.model, point)
        await anyio.to_thread.run_sync(self._write, arrays)
        await progress.commit(point)  # durable now: a stream may ack what it covers

    def _write(self, arrays: dict[str, np.ndarray]) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_write(self.path, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]

    def _restore(self) -> ResumePoint | None:
        _remove_stale_temps(self.path)
        if not os.path.exists(self.path):
            os.makedirs(self.backup_dir, exist_ok=True)
            check_writable_dir(self.backup_dir)  # fail now, not at the first backup
            return None
        header, weights, optimizer = _read(self.path)
        try:
            point = ResumePoint.from_dict(header["resume"])
            _apply(self.model, header, weights, optimizer)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"BackupAndRestore cannot resume from {self.path!r}: the backup does not fit "
                "this model (a different architecture, compile or optimizer?). Delete it "
                f"to train from the start. Received: {type(exc).__name__}: {exc}"
            ) from exc
        return point

    def _delete(self) -> None:
        _remove_stale_temps(self.path)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        with contextlib.suppress(OSError):  # kept when something else lives there
            os.rmdir(self.backup_dir)


def _collect(model: Any, point: ResumePoint) -> dict[str, np.ndarray]:
    """Everything the backup holds, as arrays (the header as JSON bytes)."""
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    optimizer = getattr(model, "optimizer", None)
    scalars: dict[str, Any] | None = None
    if optimizer is not None and hasattr(optimizer, "get_state"):
        scalars = {}
        for name, value in optimizer.get_state().items():
            if isinstance(value, np.ndarray | np.generic):
                arrays[f"optimizer_{name}"] = np.asarray(value)
            else:
                scalars[name] = value
    rng = getattr(model, "rng", None)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "resume": point.to_dict(),
        "rng_state": rng.bit_generator.state if isinstance(rng, np.random.Generator) else None,
        "layer_rng_states": {str(k): g.bit_generator.state for k, g in _own_rngs(model).items()},
        "optimizer_scalars": scalars,
        "num_weights": len(arrays) - sum(k.startswith("optimizer_") for k in arrays),
    }
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return arrays


def _own_rngs(model: Any) -> dict[int, np.random.Generator]:
    """Layers drawing from a generator of their own (``Dropout(seed=...)``), by index."""
    shared = getattr(model, "rng", None)
    found = {}
    for k, layer in enumerate(getattr(model, "layers", [])):
        rng = getattr(layer, "rng", None)
        if isinstance(rng, np.random.Generator) and rng is not shared:
            found[k] = rng
    return found


def _read(path: str) -> tuple[dict[str, Any], list[np.ndarray], dict[str, Any] | None]:
    """The header, the weights and the optimizer state of the backup at ``path``."""
    try:
        # Our own file object: np.load leaks its own when the zip is unreadable.
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
            header = json.loads(bytes(data[_HEADER]).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError(f"no {FORMAT!r} format marker")
            if header.get("version") != VERSION:
                raise ValueError(f"format version {header.get('version')!r} is not {VERSION}")
            weights = [np.array(data[f"weight_{i}"]) for i in range(header["num_weights"])]
            optimizer = header["optimizer_scalars"]
            if optimizer is not None:
                optimizer = dict(optimizer)
                for key in data.files:
                    if key.startswith("optimizer_"):
                        value = np.array(data[key])  # 0-d: a numpy scalar when saved
                        optimizer[key.removeprefix("optimizer_")] = (
                            value[()] if value.ndim == 0 else value
                        )
    except _CORRUPT as exc:
        raise ValueError(
            f"BackupAndRestore cannot read its backup {path!r}: the file is corrupt or not "
            f"an aiofit backup. Delete it to train from the start. "
            f"Received: {type(exc).__name__}: {exc}"
        ) from exc
    return header, weights, optimizer


def _apply(
    model: Any, header: dict[str, Any], weights: list[np.ndarray], optimizer: Any
) -> None:
    """Put the backed-up weights, optimizer state and rng states into ``model``."""
    model.set_weights(weights)
    if optimizer is not None:
        model.optimizer.set_state(optimizer)
    rng = getattr(model, "rng", None)
    if header["rng_state"] is not None and isinstance(rng, np.random.Generator):
        rng.bit_generator.state = header["rng_state"]
    own = _own_rngs(model)
    for k, state in header["layer_rng_states"].items():
        own[int(k)].bit_generator.state = state


def _remove_stale_temps(path: str) -> None:
    """Temp files of a write that a killed process never finished (atomic_write's names)."""
    folder, name = os.path.split(path)
    for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
        with contextlib.suppress(OSError):
            os.remove(stale)
