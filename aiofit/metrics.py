"""Public face of :mod:`aiofit.nn.metrics`: ``from aiofit import metrics``."""

from __future__ import annotations

from .nn.metrics import *  # noqa: F403
from .nn.metrics import __all__  # noqa: F401
