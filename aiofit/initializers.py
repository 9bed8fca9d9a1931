"""Public face of :mod:`aiofit.nn.initializers`: ``from aiofit import initializers``."""

from __future__ import annotations

from .nn.initializers import *  # noqa: F403
from .nn.initializers import __all__  # noqa: F401
