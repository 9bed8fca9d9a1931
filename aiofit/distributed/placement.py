"""Which callbacks run on which rank.

Every rank sees the same (global) logs, so callbacks that decide something
(``EarlyStopping``, ``ReduceLROnPlateau``, ``LearningRateScheduler``,
``TerminateOnNaN``, a user's) run on every rank and decide alike. Callbacks that
print or write files run on rank 0 only: :data:`PRIMARY_ONLY`. On the other
ranks ``BackupAndRestore`` only restores (every rank reads the backup at the start,
so its folder must be on a file system they share); rank 0 alone writes and
deletes it.
"""

from __future__ import annotations

from typing import Any

from ..callbacks import (
    BackupAndRestore,
    Callback,
    CSVLogger,
    ModelCheckpoint,
    PlotHistory,
    ProgbarLogger,
    RemoteMonitor,
)
from ..callbacks.base import Logs

__all__ = ["PRIMARY_ONLY", "for_rank"]


#: Callbacks that run on rank 0 only: they print, write files or post.
PRIMARY_ONLY: tuple[type, ...] = (
    ProgbarLogger, ModelCheckpoint, CSVLogger, PlotHistory, RemoteMonitor,
)  # fmt: skip


def for_rank(callbacks: list[Any], primary: bool) -> list[Any]:
    """The callbacks this rank runs: all on rank 0, fewer elsewhere (module docstring)."""
    if primary:
        return list(callbacks)
    kept: list[Any] = []
    for callback in callbacks:
        if isinstance(callback, BackupAndRestore):
            kept.append(RestoreOnly(callback))
        elif not isinstance(callback, PRIMARY_ONLY):
            kept.append(callback)
    return kept


class RestoreOnly(Callback):
    """A ``BackupAndRestore`` that restores in ``on_train_begin`` and never writes."""

    def __init__(self, backup: BackupAndRestore) -> None:
        super().__init__()
        self.backup = backup

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        self.backup.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        self.backup.set_params(params)

    def set_progress(self, progress: Any) -> None:
        """Hand the engine's progress to the wrapped callback (it resumes through it)."""
        self.backup.set_progress(progress)

    async def on_train_begin(self, logs: Logs | None = None) -> None:
        await self.backup.on_train_begin(logs)
