"""CallbackList: fires one hook on every callback, in order, awaiting the async ones."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from inspect import isawaitable
from typing import Any, TypeVar

from .base import HOOKS, Callback, Logs
from .history import History
from .progbar_logger import ProgbarLogger

__all__ = ["CallbackList"]

# The engine-facing hooks; each maps to the names a callback may override to receive it.
_ALIASES = {
    "on_train_batch_begin": ("on_train_batch_begin", "on_batch_begin"),
    "on_train_batch_end": ("on_train_batch_end", "on_batch_end"),
}
_DISPATCHED = tuple(h for h in HOOKS if h not in ("on_batch_begin", "on_batch_end"))

_Hook = Callable[..., Any]
_C = TypeVar("_C", bound=Callback)


def _overrides(callback: Callback, name: str) -> bool:
    """Whether ``callback`` does something in hook ``name`` (or one of its aliases)."""
    for alias in _ALIASES.get(name, (name,)):
        if alias in getattr(callback, "__dict__", {}):  # set per instance, as LambdaCallback does
            return True
        if getattr(type(callback), alias, None) is not getattr(Callback, alias):
            return True
    return False


async def _dispatch(hooks: tuple[_Hook, ...], *args: Any) -> None:
    for hook in hooks:
        result = hook(*args)
        # An async hook finishes before the next callback sees the logs.
        if result is not None and isawaitable(result):
            await result


class CallbackList(Callback):
    """A list of callbacks fired together, each hook an ``async`` method.

    Each hook calls every callback in list order with the *same* ``logs``
    dict; a callback whose hook returns an awaitable (an ``async def`` hook) is
    awaited before the next callback runs. Which callbacks override which hook
    (counting the Keras aliases ``on_batch_begin/end``) is worked out once, so
    a hook nobody overrides costs one coroutine per call and calls nothing.

    Args:
        callbacks: A callback or an iterable of callbacks (``None`` for none).
        add_history: Append a :class:`History` unless one is in ``callbacks``.
        add_progbar: Append a :class:`ProgbarLogger` unless one is in
            ``callbacks``. Order: user callbacks, then the progress bar, then
            History, so History records keys that other callbacks add.
        model: If given, passed to :meth:`set_model`.
        **params: If given, passed to :meth:`set_params`.

    Example:
        In a hand-written loop::

            callbacks = CallbackList([MyCallback()], add_history=True, model=model,
                                     epochs=1, steps=10, verbose=0)
            await callbacks.on_train_begin()
            await callbacks.on_epoch_begin(0)
    """

    def __init__(
        self,
        callbacks: Callback | Iterable[Callback] | None = None,
        *,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ) -> None:
        super().__init__()
        self.callbacks: list[Callback] = _as_list(callbacks)
        self.history: History | None = _first(self.callbacks, History)
        self._progbar: ProgbarLogger | None = _first(self.callbacks, ProgbarLogger)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        self._hooks: dict[str, tuple[_Hook, ...]] = {}
        self._refresh()
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def append(self, callback: Callback) -> None:
        """Adds ``callback`` at the end of the list."""
        self.callbacks.append(_checked(callback))
        self._refresh()

    def overrides(self, hook: str) -> bool:
        """Whether any callback does something in ``hook``: the engine may skip building logs.

        Raises:
            ValueError: if ``hook`` is not a hook name.
        """
        if hook not in self._hooks:
            raise ValueError(f"Unknown callback hook name. Received: hook={hook!r}")
        return bool(self._hooks[hook])

    def set_params(self, params: dict[str, Any]) -> None:
        """Sets ``params`` on this list and on every callback."""
        self.params = params
        for callback in self.callbacks:
            callback.set_params(params)

    def set_model(self, model: Any) -> None:
        """Sets ``model`` on this list and on every callback (and ``model.history``)."""
        super().set_model(model)
        if self.history is not None:
            # Keras exposes the run's History as ``model.history``; a model with
            # __slots__ simply goes without.
            with contextlib.suppress(AttributeError):
                model.history = self.history
        for callback in self.callbacks:
            callback.set_model(model)

    def _refresh(self) -> None:
        # Bound methods are captured now, so a hook assigned on an instance later
        # (after construction or append) is not seen: set hooks up front.
        self._hooks = {
            hook: tuple(getattr(cb, hook) for cb in self.callbacks if _overrides(cb, hook))
            for hook in _DISPATCHED
        }

    async def _fire(self, hook: str, *args: Any) -> None:
        hooks = self._hooks[hook]
        if hooks:
            await _dispatch(hooks, *args)

    async def on_train_begin(self, logs: Logs | None = None) -> None:
        await self._fire("on_train_begin", {} if logs is None else logs)

    async def on_train_end(self, logs: Logs | None = None) -> None:
        await self._fire("on_train_end", {} if logs is None else logs)

    async def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        await self._fire("on_epoch_begin", epoch, {} if logs is None else logs)

    async def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        await self._fire("on_epoch_end", epoch, {} if logs is None else logs)

    async def on_test_begin(self, logs: Logs | None = None) -> None:
        await self._fire("on_test_begin", {} if logs is None else logs)

    async def on_test_end(self, logs: Logs | None = None) -> None:
        await self._fire("on_test_end", {} if logs is None else logs)

    async def on_predict_begin(self, logs: Logs | None = None) -> None:
        await self._fire("on_predict_begin", {} if logs is None else logs)

    async def on_predict_end(self, logs: Logs | None = None) -> None:
        await self._fire("on_predict_end", {} if logs is None else logs)

    # The per-batch hooks skip the _fire indirection: they run thousands of times.
    async def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        hooks = self._hooks["on_train_batch_begin"]
        if hooks:
            await _dispatch(hooks, batch, {} if logs is None else logs)

    async def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        hooks = self._hooks["on_train_batch_end"]
        if hooks:
            await _dispatch(hooks, batch, {} if logs is None else logs)

    async def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        hooks = self._hooks["on_test_batch_begin"]
        if hooks:
            await _dispatch(hooks, batch, {} if logs is None else logs)

    async def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        hooks = self._hooks["on_test_batch_end"]
        if hooks:
            await _dispatch(hooks, batch, {} if logs is None else logs)

    async def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        hooks = self._hooks["on_predict_batch_begin"]
        if hooks:
            await _dispatch(hooks, batch, {} if logs is None else logs)

    async def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        hooks = self._hooks["on_predict_batch_end"]
        if hooks:
            await _dispatch(hooks, batch, {} if logs is None else logs)

    # The Keras aliases, for code that drives a CallbackList by hand.
    async def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        await self.on_train_batch_begin(batch, logs)

    async def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        await self.on_train_batch_end(batch, logs)


def _checked(callback: object) -> Callback:
    if not isinstance(callback, Callback):
        raise TypeError(
            "Expected `callbacks` to hold instances of `aiofit.callbacks.Callback`. "
            f"Received: {callback!r} of type {type(callback).__name__}"
        )
    return callback


def _as_list(callbacks: Callback | Iterable[Callback] | None) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, str | bytes) or not isinstance(callbacks, Iterable):
        raise TypeError(
            "Expected `callbacks` to be a Callback or a list of them. "
            f"Received: callbacks={callbacks!r}"
        )
    return [_checked(cb) for cb in callbacks]


def _first(callbacks: list[Callback], kind: type[_C]) -> _C | None:
    return next((cb for cb in callbacks if isinstance(cb, kind)), None)
