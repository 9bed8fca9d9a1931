"""The Keras 3 progress bar renderer, with an injectable output stream and clock.

The output follows ``keras/src/utils/progbar.py``: a 20-cell bar of ``━``, the
ETA while running and the elapsed time at the end, the time per step in
s/ms/us, then every value as ``- name: value`` (``.4f``, or ``.4e`` when its
magnitude is at most 1e-3). Differences, each for a reason:

- A stream that is not a terminal gets each update as a line of its own,
  ending in a newline, with no ``\\b``/``\\r`` redraw and no padding; the line
  itself, ANSI styling included, is the same. (Keras decides "terminal" from
  ``"posix" in sys.modules``, so it redraws in place even into a pipe, and
  its non-terminal mode starts each line with the newline instead.)
- verbose=2 applies the ``.4f``/``.4e`` rule to the magnitude, as verbose=1
  does; Keras compares the signed value there, printing every negative value
  in ``e`` notation.
- The clock is only for display; a fake clock makes the output deterministic.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import numpy as np

__all__ = ["Progbar", "format_time", "format_value", "is_terminal"]

_BOLD, _GREEN, _WHITE = "1", "32", "37"
_CELL = "━"


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (so a line can be redrawn in place)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed file
        return False


def format_value(value: float) -> str:
    """Formats a metric value as Keras does: ``.4f``, or ``.4e`` for magnitudes <= 1e-3."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_time(time_per_unit: float, unit_name: str) -> str:
    """Formats a duration per unit as `` 3s/step``, `` 12ms/step`` or `` 850us/step``."""
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def _format_eta(eta: float) -> str:
    if eta > 3600:
        return f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
    if eta > 60:
        return f"{int(eta // 60)}:{int(eta % 60):02d}"
    return f"{int(eta)}s"


class Progbar:
    """Displays a progress bar, Keras 3 style.

    Args:
        target: Total number of steps expected, ``None`` if unknown.
        width: Bar width in cells.
        verbose: 0 (silent), 1 (a bar redrawn as it goes), 2 (one line at the end).
        interval: Minimum time between two redraws, in seconds.
        stateful_metrics: Names of values shown as given; the others are
            averaged over the steps seen.
        unit_name: Display name for a step.
        stream: Where to write; ``sys.stdout`` by default.
        clock: Seconds as a float; ``time.monotonic`` by default.
        dynamic_display: Redraw one line in place (else print a line per
            update); by default, when ``stream`` is a terminal.
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] | None = None,
        dynamic_display: bool | None = None,
    ) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics or ())
        self._stream = sys.stdout if stream is None else stream
        self._clock = time.monotonic if clock is None else clock
        self._dynamic = is_terminal(self._stream) if dynamic_display is None else dynamic_display
        self._values: dict[str, list[Any]] = {}
        self._seen_so_far = 0
        self._start = self._clock()
        self._last_update = -math.inf
        self._time_after_first_step: float | None = None
        self._prev_total_width = 0

    def update(
        self,
        current: int,
        values: Iterable[tuple[str, Any]] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Updates the bar to step ``current``.

        Args:
            current: Index of the current step (1-based count of steps done).
            values: ``(name, value_for_last_step)`` pairs. A name in
                ``stateful_metrics`` is shown as given; others are averaged.
            finalize: Whether this is the last update; by default when
                ``current >= target``.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._accumulate(current, values or (), finalize)
        self._seen_so_far = current
        now = self._clock()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            self._draw(current, finalize, now, time_per_unit)
        elif self.verbose == 2 and finalize and self.target:
            self._write(self._summary_line(current, now, time_per_unit))
        self._last_update = now

    def add(self, n: int, values: Iterable[tuple[str, Any]] | None = None) -> None:
        """Advances the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    def _accumulate(self, current: int, values: Iterable[tuple[str, Any]], final: bool) -> None:
        for name, value in values:
            if name in self.stateful_metrics or final:
                # The final values (epoch means) replace the running average.
                self._values[name] = [value, 1]
                continue
            # max(..., 1): a finalizing call may repeat the last step.
            base = max(current - self._seen_so_far, 1)
            if name in self._values:
                self._values[name][0] += value * base
                self._values[name][1] += base
            else:
                self._values[name] = [value * base, base]

    def _draw(self, current: int, finalize: bool, now: float, time_per_unit: float) -> None:
        segments = self._bar_segments(current)
        if self.target and not finalize:
            clock_text = _format_eta(time_per_unit * (self.target - current))
        else:
            clock_text = f"{now - self._start:.0f}s"
        segments += [(" ", None), (clock_text, _BOLD)]
        segments.append((format_time(time_per_unit, self.unit_name) + self._metrics(), None))
        # Colours only on a terminal: in a log file or a pipe they are noise.
        colour = self._dynamic
        line = "".join(
            _ansi(text, code) if code is not None and colour else text for text, code in segments
        )
        if not self._dynamic:
            self._write(line + "\n")
            return
        # Back up over the previous line, then pad over what is left of it.
        width = sum(len(text) for text, _ in segments)
        padding = " " * max(self._prev_total_width - width, 0)
        message = "\b" * self._prev_total_width + "\r" + line + padding
        self._write(message + ("\n" if finalize else ""))
        self._prev_total_width = width

    def _bar_segments(self, current: int) -> list[tuple[str, str | None]]:
        if not self.target:
            return [(f"{current:7d}/Unknown", None)]
        digits = int(math.log10(self.target)) + 1
        done = int(self.width * current / self.target)
        segments: list[tuple[str, str | None]] = [
            (f"{current:{digits}d}/{self.target}", _BOLD),
            (" ", None),
        ]
        if done > 0:
            segments.append((_CELL * done, _GREEN))
        segments.append((_CELL * (self.width - done), _WHITE))
        return segments

    def _summary_line(self, current: int, now: float, time_per_unit: float) -> str:
        digits = int(math.log10(self.target or 1)) + 1
        line = f"{current:{digits}d}/{self.target} - {now - self._start:.0f}s -"
        return line + format_time(time_per_unit, self.unit_name) + self._metrics() + "\n"

    def _metrics(self) -> str:
        parts = []
        for name, (total, count) in self._values.items():
            average = float(np.mean(total)) / max(1, count)
            parts.append(f" - {name}: {format_value(average)}")
        return "".join(parts)

    def _estimate_step_duration(self, current: int, now: float) -> float:
        """Seconds per step, leaving out the first (usually slower) step once there are more."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_step = (now - self._time_after_first_step) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_step

    def _write(self, message: str) -> None:
        self._stream.write(message)
        self._stream.flush()


def _ansi(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"
