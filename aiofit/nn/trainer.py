"""``fit``, ``evaluate`` and ``predict``: the async engine's entry points on a model.

Like Keras's ``Trainer``, kept apart from the numpy model. Each method returns
the engine's coroutine; :mod:`aiofit.engine` is imported only when one is
called, so the nn core never imports an event loop library.
"""

from __future__ import annotations

from collections.abc import Collection, Coroutine
from typing import Any

__all__ = ["Trainer"]


class Trainer:
    """Mixin giving a ``Trainable`` model Keras's ``fit``/``evaluate``/``predict``.

    Example:
        >>> history = await model.fit(x, y, epochs=3, batch_size=32)  # doctest: +SKIP
    """

    def fit(self, x: Any, y: Any = None, *, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", callbacks: Any = None, validation_data: Any = None,
            validation_steps: int | None = None, validation_freq: int | Collection[int] = 1,
            validation_batch_size: int | None = None, shuffle: bool = True,
            class_weight: dict[int, float] | None = None, sample_weight: Any = None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            max_queue_size: int = 10, workers: int = 1,
            strategy: Any = None) -> Coroutine[Any, Any, Any]:
        """``aiofit.fit(self, ...)``: a coroutine to await; returns ``History``."""
        from .. import engine  # the nn core stays importable without an event loop

        return engine.fit(
            self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
            callbacks=callbacks, validation_data=validation_data,
            validation_steps=validation_steps, validation_freq=validation_freq,
            validation_batch_size=validation_batch_size, shuffle=shuffle,
            class_weight=class_weight, sample_weight=sample_weight,
            initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            max_queue_size=max_queue_size, workers=workers, strategy=strategy)

    def evaluate(self, x: Any, y: Any = None, *, batch_size: int | None = None,
                 steps: int | None = None, sample_weight: Any = None, verbose: Any = "auto",
                 callbacks: Any = None) -> Coroutine[Any, Any, Any]:
        """``aiofit.engine.evaluate(self, ...)``: a coroutine returning the logs dict."""
        from .. import engine

        return engine.evaluate(
            self, x, y, batch_size=batch_size, steps=steps, sample_weight=sample_weight,
            verbose=verbose, callbacks=callbacks)

    def predict(self, x: Any, *, batch_size: int | None = None, steps: int | None = None,
                verbose: Any = "auto", callbacks: Any = None) -> Coroutine[Any, Any, Any]:
        """``aiofit.engine.predict(self, ...)``: a coroutine returning an array."""
        from .. import engine

        return engine.predict(
            self, x, batch_size=batch_size, steps=steps, verbose=verbose, callbacks=callbacks)
