"""ReduceLROnPlateau: lower the learning rate when a monitored quantity stops improving."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._monitor import check_int, check_mode, check_number, monitor_value
from .base import Callback, Logs
from .learning_rate_scheduler import optimizer_of

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(Callback):
    """Reduce the learning rate when a metric has stopped improving (Keras 3 semantics).

    At each epoch end: a value below ``best - min_delta`` (above ``best +
    min_delta`` in ``"max"`` mode) is the new best and resets the wait count;
    otherwise, outside a cooldown, the count grows, and when it reaches
    ``patience`` the rate becomes ``max(lr * factor, min_lr)`` (unless it is
    already at ``min_lr``) and a cooldown of ``cooldown`` epochs starts, during
    which the count stays at 0. The rate in use during the epoch is added to
    the epoch logs as ``learning_rate`` (before any reduction).

    Args:
        monitor: The logs key to watch.
        factor: ``new_lr = lr * factor``; must be in ``[0, 1)``.
        patience: Epochs without improvement before the rate is reduced.
        verbose: 1 prints a line for each reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (Keras's rule for this
            callback: ``"max"`` if ``acc`` is in the name, else ``"min"``).
        min_delta: How much better a value must be to count as an improvement.
        cooldown: Epochs to wait after a reduction before counting again.
        min_lr: The lower bound on the learning rate.

    Raises:
        ValueError: for a bad argument, or a model without an optimizer (at the
            start of ``fit``).

    Example:
        >>> reduce_lr = ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5,
        ...                               min_lr=0.001)
        >>> await model.fit(x, y, validation_data=(xv, yv), callbacks=[reduce_lr])
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__()
        check_mode("ReduceLROnPlateau", mode)
        if not 0 <= check_number("factor", factor) < 1:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0 or < 0. "
                f"Received: factor={factor}"
            )
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = check_int("patience", patience)
        self.verbose = verbose
        self.mode = mode
        self.min_delta = check_number("min_delta", min_delta)
        self.cooldown = check_int("cooldown", cooldown)
        self.min_lr = check_number("min_lr", min_lr)
        self._reset()

    def _reset(self) -> None:
        self._maximize = self.mode == "max" or (self.mode == "auto" and "acc" in self.monitor)
        self.best = -np.inf if self._maximize else np.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Resets the counters and the best value; checks that the model has an optimizer."""
        self._reset()
        optimizer_of("ReduceLROnPlateau", self.model)

    def in_cooldown(self) -> bool:
        """Whether a reduction happened less than ``cooldown`` epochs ago."""
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Logs the learning rate, then counts the epoch and reduces the rate if due."""
        optimizer = optimizer_of("ReduceLROnPlateau", self.model)
        if logs is not None:
            logs["learning_rate"] = float(optimizer.learning_rate)
        current = monitor_value("Learning rate reduction", self.monitor, logs)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(epoch, optimizer)

    def _improved(self, current: float) -> bool:
        if self._maximize:
            return bool(np.greater(current, self.best + self.min_delta))
        return bool(np.less(current, self.best - self.min_delta))

    def _reduce(self, epoch: int, optimizer: Any) -> None:
        old_lr = float(optimizer.learning_rate)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}."
                )
            self.cooldown_counter = self.cooldown
            self.wait = 0
