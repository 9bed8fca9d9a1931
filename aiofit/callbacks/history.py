"""History: the per-epoch logs of a ``fit`` run, returned by ``fit``."""

from __future__ import annotations

from typing import Any

from .base import Callback, Logs

__all__ = ["History"]


class History(Callback):
    """Records the logs given to ``on_epoch_end``; ``fit`` returns it.

    ``fit`` puts its History last in the callback list, so keys that other
    callbacks add to the epoch logs (such as ``learning_rate``) are recorded too.
    An epoch that ran no batch fires no epoch hooks and so is not recorded.

    Attributes:
        history: ``{name: [value per epoch, ...]}``, e.g.
            ``{"loss": [0.5, 0.3], "val_loss": [0.6, 0.4]}``.
        epoch: The 0-based indices of the recorded epochs (with
            ``initial_epoch=2``, they start at 2).
        params: The run's parameters (``epochs``, ``steps``, ``verbose``).
        model: The model trained.

    Example:
        After ``history = await model.fit(x, y, epochs=3)``,
        ``history.history["loss"]`` is a list of three epoch means.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Starts a fresh record, so a History can be reused across runs."""
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Appends ``epoch`` and every value of ``logs`` to the record."""
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epoch={self.epoch!r}, history={self.history!r})"
