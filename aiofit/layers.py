"""Public face of :mod:`aiofit.nn.layers`: ``from aiofit import layers``."""

from __future__ import annotations

from .nn.layers import *  # noqa: F403
from .nn.layers import __all__  # noqa: F401
