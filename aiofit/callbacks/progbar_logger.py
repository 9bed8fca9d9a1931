"""ProgbarLogger: prints the Keras-style progress bar (verbose=1) or epoch lines (verbose=2)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from ._progbar import Progbar, is_terminal
from .base import Callback, Logs

__all__ = ["ProgbarLogger"]

# Bookkeeping keys of the batch logs, not values to show.
_HIDDEN = frozenset({"batch", "size"})


class ProgbarLogger(Callback):
    """Callback that prints progress and metrics, as Keras 3's does.

    ``fit``, ``evaluate`` and ``predict`` add one when ``verbose`` is not 0.
    With verbose=1 each epoch shows ``Epoch i/N`` (when N > 1) and a bar
    redrawn in place on a terminal, ending as
    ``32/32 ━━━━━━━━━━━━━━━━━━━━ 1s 3ms/step - accuracy: 0.9100 - loss: 0.3100``;
    with verbose=2 only that end line (without the bar), one per epoch;
    ``"auto"`` means 1 when the stream is a terminal, else 2. Validation inside
    ``fit`` is silent: its ``val_*`` values appear at the end of the epoch line.

    Args:
        count_mode: ``"steps"``, the only mode: the bar counts batches.
        stream: Where to print; ``sys.stdout`` (looked up when printing) by default.
        clock: Seconds as a float, for the displayed times only; ``time.monotonic``
            by default.
    """

    def __init__(
        self,
        count_mode: str = "steps",
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        if count_mode != "steps":
            raise ValueError(
                'ProgbarLogger only counts steps: `count_mode` must be "steps". '
                f"Received: count_mode={count_mode!r}"
            )
        self.count_mode = count_mode
        self._stream = stream
        self._clock = clock
        self.seen = 0
        self.progbar: Progbar | None = None
        self.target: int | None = None
        self.verbose: int = 1
        self.epochs = 1
        self._called_in_fit = False

    @property
    def stream(self) -> TextIO:
        """The output stream."""
        return sys.stdout if self._stream is None else self._stream

    def set_params(self, params: dict[str, Any]) -> None:
        """Reads ``verbose``, ``epochs`` and ``steps`` (``None`` when unknown)."""
        super().set_params(params)
        verbose = params.get("verbose", 1)
        if verbose == "auto":
            verbose = 1 if is_terminal(self.stream) else 2
        if verbose not in (0, 1, 2):
            raise ValueError(f'`verbose` must be 0, 1, 2 or "auto". Received: verbose={verbose!r}')
        self.verbose = verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._called_in_fit = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        # The same logger may next serve evaluate(), whose progress is not silent.
        self._called_in_fit = False

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._reset_progbar()
        if self.verbose and self.epochs > 1:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs}\n")
            self.stream.flush()

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._update_progbar(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._finalize_progbar(logs)

    def on_test_begin(self, logs: Logs | None = None) -> None:
        if not self._called_in_fit:
            self._reset_progbar()

    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_test_end(self, logs: Logs | None = None) -> None:
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_begin(self, logs: Logs | None = None) -> None:
        self._reset_progbar()

    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._update_progbar(batch, None)  # predictions are not values to display

    def on_predict_end(self, logs: Logs | None = None) -> None:
        self._finalize_progbar(None)

    def _reset_progbar(self) -> None:
        # A new bar per epoch: its clock starts now, before the first batch.
        self.seen = 0
        self.progbar = None
        self._get_progbar()

    def _get_progbar(self) -> Progbar:
        if self.progbar is None:
            self.progbar = Progbar(
                self.target,
                verbose=self.verbose,
                unit_name="step",
                stream=self.stream,
                clock=self._clock,
            )
        return self.progbar

    def _update_progbar(self, batch: int, logs: Logs | None) -> None:
        progbar = self._get_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            progbar.update(self.seen, _shown(logs), finalize=False)

    def _finalize_progbar(self, logs: Logs | None) -> None:
        progbar = self._get_progbar()
        if progbar.target is None:
            # An unknown length becomes known once the epoch is over.
            progbar.target = self.seen
        progbar.update(progbar.target, _shown(logs), finalize=True)


def _shown(logs: Logs | None) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in (logs or {}).items() if k not in _HIDDEN]
