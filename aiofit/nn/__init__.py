"""The synchronous numpy core: layers, losses, optimizers, metrics and models.

Nothing here imports an event loop library; ``Model.fit`` and friends import
:mod:`aiofit.engine` only when called.
"""

from __future__ import annotations

from .model import Model
from .saving import load_model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]
