"""EarlyStopping: stop training when a monitored quantity has stopped improving."""

from __future__ import annotations

from typing import Any

from ._monitor import (
    Direction,
    check_int,
    check_mode,
    check_number,
    direction,
    is_improvement,
    monitor_value,
)
from .base import Callback, Logs

__all__ = ["EarlyStopping"]


class EarlyStopping(Callback):
    """Stop training when a monitored metric has stopped improving (Keras 3 semantics).

    At the end of every epoch the monitored value is compared with the best so
    far; an epoch that does not beat it by more than ``min_delta`` adds one to
    a wait counter, and once the counter reaches ``patience`` (never at the
    first epoch) ``model.stop_training`` is set: the run ends after this epoch.

    Args:
        monitor: The logs key to watch, e.g. ``"val_loss"`` or ``"accuracy"``.
        min_delta: The smallest change that counts as an improvement (its
            absolute value is used).
        patience: Epochs without improvement after which training stops.
        verbose: 1 prints a line when stopping and when restoring weights.
        mode: ``"min"``, ``"max"``, or ``"auto"`` (losses and errors go down,
            anything with ``acc`` in its name goes up; otherwise ValueError).
        baseline: If set, the wait counter is reset only by an epoch that
            beats both the best so far and ``baseline``, so a run that never
            beats it stops after ``patience`` epochs.
        restore_best_weights: If True, ``on_train_end`` puts back the weights
            from the end of the best epoch, as Keras 3 does: whether training
            stopped early or ran all its epochs, and even when no epoch beat
            ``baseline`` (also when ``fit`` ends by an error or cancellation,
            since aiofit calls ``on_train_end`` then too). If False, the
            weights of the last step stay.
        start_from_epoch: Epochs (0-based indices below it) to ignore, as a warm-up.

    Attributes:
        stopped_epoch: The epoch at which training was stopped (0 if it was not).
        best: The best monitored value seen in this run (``None`` before one).
        best_epoch: The epoch where ``best`` was seen.
        wait: Epochs since the last improvement, as Keras counts them.

    Raises:
        ValueError: for an unknown ``mode``, or in ``"auto"`` mode a ``monitor``
            whose direction cannot be told from its name (at the first epoch end).

    Example:
        >>> stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
        >>> history = await model.fit(x, y, epochs=100, validation_data=(xv, yv),
        ...                           callbacks=[stop])
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        check_mode("EarlyStopping", mode)
        self.monitor = monitor
        self.min_delta = abs(check_number("min_delta", min_delta))
        self.patience = check_int("patience", patience)
        self.verbose = verbose
        self.mode = mode
        self.baseline = None if baseline is None else check_number("baseline", baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = check_int("start_from_epoch", start_from_epoch)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: list[Any] | None = None
        self._way: Direction | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Forgets the previous run, so one instance can serve several ``fit`` calls."""
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Updates the best value and the wait counter; may set ``model.stop_training``."""
        if self._way is None:
            self._way = direction("EarlyStopping", self.monitor, self.mode)
        current = monitor_value("Early stopping", self.monitor, logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if is_improvement(current, self.best, self._way, self.min_delta):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or is_improvement(
                current, self.baseline, self._way, self.min_delta
            ):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Reports the stop and restores the best weights if asked to."""
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)
