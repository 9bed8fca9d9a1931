"""Public face of :mod:`aiofit.nn.optimizers`: ``from aiofit import optimizers``."""

from __future__ import annotations

from .nn.optimizers import *  # noqa: F403
from .nn.optimizers import __all__  # noqa: F401
