"""LambdaCallback: a callback built from plain or async functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import HOOKS, Callback

__all__ = ["LambdaCallback"]


class LambdaCallback(Callback):
    """Callback for simple custom callbacks made on the fly, as in Keras 3.

    Each function is called with the hook's arguments, positionally:
    ``on_epoch_begin/end(epoch, logs)``, ``on_train_begin/end(logs)``,
    ``on_train_batch_begin/end(batch, logs)``, and so on for every hook of
    :class:`Callback`. A function may be ``async def``: it is awaited.

    Args:
        on_epoch_begin: Called at the start of every epoch.
        on_epoch_end: Called at the end of every epoch.
        on_train_begin: Called at the start of training.
        on_train_end: Called at the end of training.
        on_train_batch_begin: Called before every training batch.
        on_train_batch_end: Called after every training batch.
        **kwargs: Any other hook, as ``hook_name=function`` (e.g.
            ``on_test_end=...``, or the alias ``on_batch_end=...``).

    Raises:
        TypeError: for a keyword that is not a hook name, or a value that is
            not callable.

    Example:
        An async function is awaited, so it may do I/O::

            async def report(epoch, logs):
                await client.post("/loss", json=logs)

            LambdaCallback(on_epoch_end=report, on_train_end=lambda logs: print("done"))
    """

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        **kwargs: Callable[..., Any],
    ) -> None:
        super().__init__()
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, function in hooks.items():
            if name not in HOOKS:
                raise TypeError(
                    f"LambdaCallback got an unknown hook name; hooks are {', '.join(HOOKS)}. "
                    f"Received: {name}={function!r}"
                )
            if function is None:
                continue
            if not callable(function):
                raise TypeError(
                    f"LambdaCallback hooks must be callable. Received: {name}={function!r}"
                )
            # An instance attribute shadows the no-op method; CallbackList sees it as overridden.
            setattr(self, name, function)
