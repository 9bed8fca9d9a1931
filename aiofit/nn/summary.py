"""``Model.summary()``: Keras's table of layers, output shapes and parameter counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import Model

__all__ = ["summary_lines"]

_HEADERS = ("Layer (type)", "Output Shape", "Param #")


def summary_lines(model: Model, line_length: int | None = None) -> list[str]:
    """The lines of the summary table, without trailing newlines.

    Example output::

        Model: "sequential"
        ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
        ┃ Layer (type)                  ┃ Output Shape           ┃       Param # ┃
        ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
        │ dense (Dense)                 │ (None, 64)             │         1,344 │
        └───────────────────────────────┴────────────────────────┴───────────────┘
         Total params: 1,344 (5.25 KB)
         Trainable params: 1,344 (5.25 KB)
         Non-trainable params: 0 (0.00 B)
    """
    rows = [_row(model, layer) for layer in model._layers]
    widths = _widths(rows, line_length)
    lines = [
        f'Model: "{model.name}"',
        _rule("┏", "┳", "┓", "━", widths),
        _cells(_HEADERS, widths, "┃"),
        _rule("┡", "╇", "┩", "━", widths),
    ]
    for k, row in enumerate(rows):
        if k:
            lines.append(_rule("├", "┼", "┤", "─", widths))
        lines.append(_cells(row, widths, "│"))
    lines.append(_rule("└", "┴", "┘", "─", widths))
    return lines + _totals(model)


def _row(model: Model, layer: object) -> tuple[str, str, str]:
    name = f"{getattr(layer, 'name', '?')} ({type(layer).__name__})"
    shape = getattr(layer, "output_shape", None)
    if not model.built or shape is None:
        return name, "?", "0 (unbuilt)"
    count = layer.count_params()  # type: ignore[attr-defined]
    return name, str((None, *shape)), f"{count:,}"


def _widths(rows: list[tuple[str, str, str]], line_length: int | None) -> list[int]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) + 2 for i, h in enumerate(_HEADERS)]
    widths = [max(w, m) for w, m in zip(widths, (31, 24, 15), strict=True)]
    if line_length is not None:
        extra = line_length - (sum(widths) + 4)
        widths[0] += max(extra, 0)
    return widths


def _rule(left: str, mid: str, right: str, fill: str, widths: list[int]) -> str:
    return left + mid.join(fill * w for w in widths) + right


def _cells(values: tuple[str, str, str], widths: list[int], bar: str) -> str:
    name, shape, params = values
    return (f"{bar} {name:<{widths[0] - 2}} {bar} {shape:<{widths[1] - 2}} "
            f"{bar} {params:>{widths[2] - 2}} {bar}")


def _totals(model: Model) -> list[str]:
    if not model.built:
        return [" Total params: 0 (unbuilt)"]
    itemsize = model.dtype.itemsize
    trainable = sum(p.size for layer in model._layers for p in layer.params)
    state = sum(s.size for layer in model._layers for s in layer.state)
    optimizer = 0
    if model._optimizer_ready:
        # Keras 3 counts every optimizer variable (slots, iterations, learning rate)
        # and includes them in the total.
        optimizer = sum(int(np.size(v)) for v in model.optimizer.get_state().values())
    lines = [f" Total params: {_count(trainable + state + optimizer, itemsize)}",
             f" Trainable params: {_count(trainable, itemsize)}",
             f" Non-trainable params: {_count(state, itemsize)}"]
    if optimizer:
        lines.append(f" Optimizer params: {_count(optimizer, itemsize)}")
    return lines


def _count(n: int, itemsize: int) -> str:
    return f"{n:,} ({_bytes(n * itemsize)})"


def _bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"  # pragma: no cover - the loop always returns
