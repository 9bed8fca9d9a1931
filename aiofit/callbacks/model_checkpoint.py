"""ModelCheckpoint: save the model or its weights every epoch or every N batches, atomically."""

from __future__ import annotations

import errno
import os
import warnings

import anyio
import numpy as np

from .._atomic import check_writable_dir
from ..nn.saving import save_weights
from ._monitor import Direction, check_int, check_mode, check_number, direction, is_improvement
from .base import Callback, Logs

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(Callback):
    """Save the model or its weights at some frequency (Keras 3 semantics).

    ``filepath`` is formatted with ``epoch`` (1-based, as in Keras) and the
    logs' keys, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.keras"``; when saving
    every N batches, ``batch`` (1-based within the epoch) and the batch's logs.
    Every file is written atomically, in a worker thread so the event loop
    stays free: a crash leaves the previous checkpoint intact.

    Args:
        filepath: Where to save; any file name (aiofit does not require
            Keras's ``.keras``/``.weights.h5`` suffixes). Its folder is created
            at the start of training if it does not exist.
        monitor: The logs key that decides what "best" means.
        verbose: 1 prints a line for each save (or skipped save).
        save_best_only: Only save when ``monitor`` improves on the best so far
            (or on ``initial_value_threshold``). Without placeholders in
            ``filepath``, the file then always holds the best model.
        save_weights_only: Save only the weights, with
            ``model.save_weights(filepath)`` (load them with
            ``model.load_weights(filepath)``), rather than ``model.save(filepath)``.
            A model without ``save_weights`` gets its ``get_weights()`` saved
            in the same no-pickle ``.npz`` format.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as in :class:`EarlyStopping`);
            only consulted with ``save_best_only``.
        save_freq: ``"epoch"``, or an int: save after every this many
            training batches (counted across epoch boundaries).
        initial_value_threshold: The "best" value a model must beat to be
            saved when ``save_best_only`` is set. The best is reset to it at the
            start of every ``fit``.

    Raises:
        ValueError: for a bad ``save_freq``, ``mode`` or threshold.
        TypeError: at the start of ``fit``, if the model has no ``save`` and
            ``save_weights_only`` is False.
        OSError: at the start of ``fit`` if the folder cannot be created or
            written; later, the original error of a failed save, naming the path.
        KeyError: if ``filepath`` names a key the logs do not have.

    Example:
        >>> checkpoint = ModelCheckpoint("best.keras", monitor="val_accuracy",
        ...                              save_best_only=True)
        >>> await model.fit(x, y, epochs=10, validation_data=(xv, yv),
        ...                 callbacks=[checkpoint])
        >>> model = aiofit.load_model("best.keras")
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        check_mode("ModelCheckpoint", mode)
        if save_freq != "epoch":
            check_int("save_freq", save_freq, minimum=1)
        if initial_value_threshold is not None:
            check_number("initial_value_threshold", initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = mode
        self.save_freq = save_freq
        self.initial_value_threshold = initial_value_threshold
        self.best: float | None = initial_value_threshold
        self._way: Direction | None = None
        self._batches_since_save = 0
        self._current_epoch = 0
        if save_freq != "epoch":
            # Only a per-batch checkpoint listens to batches: without the hook the
            # engine may queue steps ahead, which is much faster for small batches.
            self.on_train_batch_end = self._save_on_batch  # type: ignore[method-assign]

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Resets the best value and batch count; checks the model and the folder up front."""
        self.best = self.initial_value_threshold
        self._way = None
        self._batches_since_save = 0
        self._current_epoch = 0
        if not self.save_weights_only and not callable(getattr(self.model, "save", None)):
            raise TypeError(
                "ModelCheckpoint saves the whole model with `model.save(filepath)`, which "
                "this model does not have; pass `save_weights_only=True` to save its weights. "
                f"Received: model={self.model!r}"
            )
        _prepare_folder(self.filepath)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Remembers the epoch, for per-batch file names."""
        self._current_epoch = epoch

    async def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Saves (with ``save_freq="epoch"``) if ``save_best_only`` allows."""
        if self.save_freq == "epoch":
            await self._save(epoch, None, logs or {})

    async def _save_on_batch(self, batch: int, logs: Logs | None = None) -> None:
        self._batches_since_save += 1
        if self._batches_since_save >= int(self.save_freq):
            self._batches_since_save = 0
            await self._save(self._current_epoch, batch, logs or {})

    async def _save(self, epoch: int, batch: int | None, logs: Logs) -> None:
        filepath = self._file_path(epoch, batch, logs)
        if self._should_save(epoch, logs, filepath):
            # Not cancellable: an atomic write either finishes or leaves no trace anyway.
            await anyio.to_thread.run_sync(self._write, filepath)
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _file_path(self, epoch: int, batch: int | None, logs: Logs) -> str:
        keys = {**logs, "epoch": epoch + 1}
        if batch is not None:
            keys["batch"] = batch + 1
        try:
            return self.filepath.format(**keys)
        except KeyError as exc:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {exc}. '
                f"Available keys: {', '.join(keys)}"
            ) from exc

    def _should_save(self, epoch: int, logs: Logs, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None or np.ndim(current) > 0:
            warnings.warn(
                f"Can save best model only with `{self.monitor}` available as a scalar; "
                f"saving anyway. Received: {self.monitor}={current!r}",
                UserWarning,
                stacklevel=2,
            )
            return True
        if self._way is None:
            self._way = direction("ModelCheckpoint", self.monitor, self.mode)
        best = "None" if self.best is None else f"{self.best:.5f}"
        if is_improvement(current, self.best, self._way, 0.0):
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                    f"{current:.5f}, saving model to {filepath}"
                )
            self.best = float(current)
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _write(self, filepath: str) -> None:
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)  # a folder named by a placeholder
        if os.path.isdir(filepath):
            raise IsADirectoryError(
                errno.EISDIR,
                "Please specify a non-directory filepath for ModelCheckpoint. "
                f"Received: filepath={filepath!r}",
            )
        own_save_weights = getattr(self.model, "save_weights", None)
        if not self.save_weights_only:
            self.model.save(filepath)
        elif callable(own_save_weights):
            own_save_weights(filepath)
        else:
            save_weights(self.model, filepath)


def _prepare_folder(filepath: str) -> None:
    """Create the checkpoint folder (as Keras does) and check it is writable, before training.

    A folder whose name has placeholders is only known at save time; its
    nearest existing parent is checked instead.
    """
    folder = os.path.dirname(filepath)
    if "{" in folder:
        folder = os.path.dirname(folder[: folder.index("{")])
        while folder and not os.path.isdir(folder):
            folder = os.path.dirname(folder)
    elif folder:
        os.makedirs(folder, exist_ok=True)
    if "{" not in filepath and os.path.isdir(filepath):
        raise IsADirectoryError(
            errno.EISDIR,
            "Please specify a non-directory filepath for ModelCheckpoint. "
            f"Received: filepath={filepath!r}",
        )
    check_writable_dir(folder)
