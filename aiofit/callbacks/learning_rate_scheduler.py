"""LearningRateScheduler: set the optimizer's learning rate from a (sync or async) schedule."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Awaitable, Callable
from typing import Any

from .base import Callback, HookResult, Logs

__all__ = ["LearningRateScheduler", "optimizer_of"]


def optimizer_of(owner: str, model: Any) -> Any:
    """``model.optimizer``, or ValueError if it has no settable ``learning_rate``."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(
            f"{owner} needs `model.optimizer` with a `learning_rate` attribute: compile the "
            f"model first. Received: optimizer={optimizer!r}"
        )
    return optimizer


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from ``schedule`` (Keras 3 semantics).

    ``schedule(epoch, lr)`` gets the 0-based epoch index and the current
    learning rate and returns the new one; a ``schedule(epoch)`` of one
    argument is also accepted, as Keras does. It may be ``async def``: the
    epoch starts once it has returned. The learning rate in use is added to
    the epoch logs as ``learning_rate`` (so History records it).

    Args:
        schedule: The function, plain or async, returning a number.
        verbose: 1 prints the rate set at each epoch.

    Raises:
        TypeError: if ``schedule`` is not callable or cannot take ``(epoch, lr)``
            nor ``(epoch)``.
        ValueError: if the model has no optimizer (at the start of ``fit``),
            or ``schedule`` returns something other than a number (a rate the
            optimizer rejects, negative or not finite, raises its own ValueError).

    Example:
        >>> def schedule(epoch, lr):
        ...     return lr if epoch < 10 else lr * math.exp(-0.1)
        >>> await model.fit(x, y, epochs=15, callbacks=[LearningRateScheduler(schedule)])
    """

    def __init__(self, schedule: Callable[..., Any], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"`schedule` must be callable. Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        # Decided from the signature rather than, as Keras does, by retrying on
        # TypeError, which would also swallow a TypeError raised inside the schedule.
        self._takes_lr = _takes_lr(schedule)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Checks that the model has an optimizer, before training starts."""
        optimizer_of("LearningRateScheduler", self.model)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> HookResult:
        """Sets the optimizer's learning rate to ``schedule``'s value for this epoch.

        Returns an awaitable (which the engine awaits) when ``schedule`` is async.
        """
        optimizer = optimizer_of("LearningRateScheduler", self.model)
        current = float(optimizer.learning_rate)
        result = self.schedule(epoch, current) if self._takes_lr else self.schedule(epoch)
        if inspect.isawaitable(result):
            return self._apply_later(epoch, optimizer, result)
        self._apply(epoch, optimizer, result)
        return None

    async def _apply_later(self, epoch: int, optimizer: Any, result: Awaitable[Any]) -> None:
        self._apply(epoch, optimizer, await result)

    def _apply(self, epoch: int, optimizer: Any, learning_rate: Any) -> None:
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
            raise ValueError(
                "The output of the `schedule` function should be a float. "
                f"Received: {learning_rate!r}"
            )
        optimizer.learning_rate = float(learning_rate)
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{float(learning_rate)}."
            )

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Adds the learning rate in use to the epoch logs as ``learning_rate``."""
        if logs is not None:
            optimizer = optimizer_of("LearningRateScheduler", self.model)
            logs["learning_rate"] = float(optimizer.learning_rate)


def _takes_lr(schedule: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):  # no signature (some builtins): assume Keras's (epoch, lr)
        return True
    for args, takes_lr in (((0, 0.1), True), ((0,), False)):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return takes_lr
    raise TypeError(
        "`schedule` must take `(epoch, lr)` or `(epoch)`. "
        f"Received: schedule={schedule!r} with signature {signature}"
    )
