"""The async engine: fit, evaluate and predict over any source, on asyncio or trio."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .evaluation import evaluate, predict
    from .runner import run
    from .training import fit

__all__ = ["evaluate", "fit", "predict", "run"]

_HOMES = {
    "evaluate": ".evaluation",
    "predict": ".evaluation",
    "fit": ".training",
    "run": ".runner",
}


def __getattr__(name: str) -> Any:
    # Lazy, so the pipeline's modules (epoch_iterator, worker_thread), which the
    # sources import, load without pulling in the loop and the callbacks.
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
