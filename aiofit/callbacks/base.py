"""The callback base class: Keras's hooks, each of which may be plain or ``async def``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

__all__ = ["BATCH_HOOKS", "HOOKS", "Callback", "HookResult", "Logs"]

Logs = dict[str, Any]
#: What a hook returns: ``None`` from a plain ``def``, an awaitable from an ``async def``.
HookResult = Awaitable[Any] | None

#: Hooks called once per batch, where dispatch cost matters.
BATCH_HOOKS = (
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)

#: Every hook the engine calls, plus the Keras aliases ``on_batch_begin/end``.
HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
    *BATCH_HOOKS,
    "on_batch_begin",
    "on_batch_end",
)


class Callback:
    """Base class for callbacks: override the hooks you need, with ``def`` or ``async def``.

    A hook defined ``async def`` is awaited before the engine goes on, so it
    may do I/O without blocking the event loop. Every hook here is a no-op, and
    an un-overridden hook costs nothing per batch (see
    :class:`~aiofit.callbacks.CallbackList`).

    ``on_train_batch_begin/end`` call the aliases ``on_batch_begin/end`` and
    return their result, as Keras does, so overriding either name works.

    Attributes:
        params: Training parameters set by the engine before ``on_train_begin``:
            ``{"epochs": ..., "steps": ..., "verbose": ...}``.
        model: The model being trained, set by :meth:`set_model`.

    Example:
        >>> class PrintLoss(Callback):
        ...     async def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, logs["loss"])
    """

    # Class-level default so a subclass that forgets ``super().__init__()`` still works.
    _model: Any = None

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._model = None

    def set_params(self, params: dict[str, Any]) -> None:
        """Stores the training parameters (``epochs``, ``steps``, ``verbose``)."""
        self.params = params

    def set_model(self, model: Any) -> None:
        """Stores the model being trained; it is then available as ``self.model``."""
        self._model = model

    @property
    def model(self) -> Any:
        """The model set by :meth:`set_model` (``None`` before)."""
        return self._model

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> HookResult:
        """A backwards compatibility alias for ``on_train_batch_begin``."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> HookResult:
        """A backwards compatibility alias for ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> HookResult:
        """Called at the start of an epoch of ``fit`` (``epoch`` is 0-based)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> HookResult:
        """Called at the end of an epoch, after validation.

        Args:
            epoch: 0-based index of the epoch.
            logs: Epoch means of the loss and metrics weighted by batch size,
                plus ``val_<name>`` for each when validation ran.
        """

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> HookResult:
        """Called before a training batch; ``logs`` is ``{"batch": i, "size": n}``."""
        return self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> HookResult:
        """Called after a training batch; ``logs`` adds this batch's loss and metrics."""
        return self.on_batch_end(batch, logs)

    def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> HookResult:
        """Called before a batch of ``evaluate``, or of validation inside ``fit``."""

    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> HookResult:
        """Called after a batch of ``evaluate``, or of validation inside ``fit``."""

    def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> HookResult:
        """Called before a batch of ``predict``."""

    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> HookResult:
        """Called after a batch of ``predict``."""

    def on_train_begin(self, logs: Logs | None = None) -> HookResult:
        """Called once at the start of ``fit``."""

    def on_train_end(self, logs: Logs | None = None) -> HookResult:
        """Called once at the end of ``fit``, also when it ends by an error or cancellation.

        Args:
            logs: The last epoch's logs (empty if no epoch completed).
        """

    def on_test_begin(self, logs: Logs | None = None) -> HookResult:
        """Called at the start of ``evaluate`` or of validation inside ``fit``."""

    def on_test_end(self, logs: Logs | None = None) -> HookResult:
        """Called at the end of ``evaluate`` or of validation, with its results."""

    def on_predict_begin(self, logs: Logs | None = None) -> HookResult:
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs: Logs | None = None) -> HookResult:
        """Called at the end of ``predict``."""
