"""What the monitoring callbacks share: which way a monitored quantity should go.

Keras 3 asks each compiled metric for its direction; aiofit's metrics are
named, so ``mode="auto"`` reads the direction off the name instead (see
:func:`direction`). ``ReduceLROnPlateau`` keeps Keras's own simpler rule.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Literal

__all__ = [
    "MODES",
    "Direction",
    "check_int",
    "check_mode",
    "check_number",
    "direction",
    "is_improvement",
    "monitor_value",
]

MODES = ("auto", "min", "max")
Direction = Literal["min", "max"]

_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall")
_LOWER_IS_BETTER = ("mae", "mse", "rmse", "mape", "msle", "huber", "hinge", "logcosh")


def check_mode(owner: str, mode: object) -> None:
    """Raise ValueError unless ``mode`` is ``"auto"``, ``"min"`` or ``"max"``."""
    if mode not in MODES:
        raise ValueError(
            f"{owner} `mode` must be one of 'auto', 'min', 'max'. Received: mode={mode!r}"
        )


def direction(owner: str, monitor: str, mode: str) -> Direction:
    """``"min"`` or ``"max"``: the way ``monitor`` improves.

    In ``"auto"`` mode: losses, errors and crossentropies go down; anything
    with ``acc`` in its name (``accuracy``, ``val_acc``, ``binary_accuracy``...)
    goes up, as do AUC, precision and recall.

    Raises:
        ValueError: in ``"auto"`` mode, for a name whose direction is unknown.
    """
    if mode in ("min", "max"):
        return "min" if mode == "min" else "max"
    name = monitor.removeprefix("val_")
    if name.endswith(("loss", "error", "crossentropy")) or name in _LOWER_IS_BETTER:
        return "min"
    if any(word in name for word in _HIGHER_IS_BETTER):
        return "max"
    raise ValueError(
        f"{owner} cannot tell whether `{monitor}` should be maximized or minimized. "
        f"Pass `mode='max'` or `mode='min'`. Received: monitor={monitor!r}"
    )


def is_improvement(
    current: float, reference: float | None, way: Direction, min_delta: float
) -> bool:
    """Whether ``current`` beats ``reference`` by more than ``min_delta`` (Keras's test).

    Any value beats a ``reference`` of ``None`` (nothing seen yet); NaN beats nothing.
    """
    if reference is None:
        return True
    if way == "min":
        return bool(current + min_delta < reference)
    return bool(current - min_delta > reference)


def monitor_value(owner: str, monitor: str, logs: dict[str, Any] | None) -> Any:
    """``logs[monitor]``, or ``None`` with a warning listing the keys there are (as Keras)."""
    logs = logs or {}
    value = logs.get(monitor)
    if value is None:
        warnings.warn(
            f"{owner} is conditioned on metric `{monitor}` which is not available. "
            f"Available metrics are: {','.join(logs)}",
            UserWarning,
            stacklevel=3,
        )
    return value


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` if it is an int >= ``minimum``, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def check_number(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number, else ValueError naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    return float(value)
