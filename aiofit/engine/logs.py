"""Small pure helpers of the loop: epoch means, argument checks, verbose, validation_freq."""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import Any

__all__ = [
    "WeightedMeans",
    "check_trainable",
    "check_positive_int",
    "check_validation_freq",
    "resolve_verbose",
    "should_validate",
]


class WeightedMeans:
    """Epoch logs: each key's mean over the batches that reported it, weighted by batch size."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, logs: dict[str, Any], size: int) -> None:
        """Adds one batch's logs, weighted by its number of samples ``size``."""
        sums, counts = self._sums, self._counts
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + float(value) * size
            counts[key] = counts.get(key, 0) + size

    def state(self) -> tuple[dict[str, float], dict[str, int]]:
        """Copies of the running sums and sample counts (for a backup)."""
        return dict(self._sums), dict(self._counts)

    def restore(self, sums: dict[str, float], counts: dict[str, int]) -> None:
        """Continue from :meth:`state`'s output, exactly."""
        if set(sums) != set(counts):
            raise ValueError(
                f"sums and counts must have the same keys. Received: {sorted(sums)} "
                f"and {sorted(counts)}"
            )
        self._sums, self._counts = dict(sums), dict(counts)

    def result(self) -> dict[str, float]:
        """The weighted means, in the order the keys first appeared."""
        return {key: total / self._counts[key] for key, total in self._sums.items()}


def check_trainable(model: Any) -> None:
    """The engine drives models only through :class:`aiofit.Trainable`'s members."""
    from .._protocol import Trainable

    if not isinstance(model, Trainable):
        missing = [
            name
            for name in ("train_on_batch", "test_on_batch", "predict_on_batch", "get_weights",
                         "set_weights", "stop_training", "metrics_names")
            if not hasattr(model, name)
        ]  # fmt: skip
        raise TypeError(
            f"The model must satisfy aiofit.Trainable; missing {', '.join(missing)}. "
            f"Received: model of type {type(model).__name__}"
        )


def resolve_verbose(verbose: int | str) -> int:
    """``"auto"`` is 1 on a terminal and 2 otherwise; 0, 1 and 2 pass through."""
    if verbose == "auto":
        isatty = getattr(sys.stdout, "isatty", None)
        return 1 if isatty is not None and isatty() else 2
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
    return int(verbose)


def check_positive_int(
    name: str, value: Any, *, allow_none: bool = True, minimum: int = 1
) -> None:
    """Raise a Keras-style error unless ``value`` is an int >= ``minimum`` (or None if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}"
            f"{' or None' if allow_none else ''}. Received: {name}={value!r}"
        )


def should_validate(validation_freq: int | Collection[int], epoch: int) -> bool:
    """Whether validation runs after 0-based ``epoch`` (Keras: freq counts 1-based epochs)."""
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq


def check_validation_freq(validation_freq: Any) -> None:
    """An int >= 1 or a collection of 1-based epoch numbers."""
    if isinstance(validation_freq, int) and not isinstance(validation_freq, bool):
        check_positive_int("validation_freq", validation_freq, allow_none=False)
        return
    if isinstance(validation_freq, list | tuple | set | frozenset | range) and all(
        isinstance(e, int) and not isinstance(e, bool) for e in validation_freq
    ):
        return
    raise ValueError(
        "`validation_freq` must be an integer or a list of epoch numbers (1-based). "
        f"Received: validation_freq={validation_freq!r}"
    )
