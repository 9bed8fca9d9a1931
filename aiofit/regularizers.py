"""Public face of :mod:`aiofit.nn.regularizers`: ``from aiofit import regularizers``."""

from __future__ import annotations

from .nn.regularizers import *  # noqa: F403
from .nn.regularizers import __all__  # noqa: F401
