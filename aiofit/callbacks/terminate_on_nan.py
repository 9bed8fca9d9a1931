"""TerminateOnNaN: stops training when a batch loss is NaN or infinite."""

from __future__ import annotations

import math
import sys

from .base import Callback, Logs

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """Stops training when a training batch's loss is NaN or infinite, as Keras 3 does.

    By default it sets ``model.stop_training = True``: the epoch ends after
    this batch (validation, ``on_epoch_end`` and ``on_train_end`` still run).

    Args:
        raise_error: If True, raise a ``RuntimeError`` naming the batch instead,
            which ends ``fit`` with that error at once.

    Example:
        ``await model.fit(x, y, callbacks=[TerminateOnNaN()])``
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Checks this batch's ``loss``.

        Raises:
            RuntimeError: if the loss is NaN or infinite and ``raise_error`` is set.
        """
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. "
                f"Loss value: {loss}. Terminating training immediately."
            )
        print(f"Batch {batch}: Invalid loss, terminating training", file=sys.stdout)
        self.model.stop_training = True
