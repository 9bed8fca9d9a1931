"""Public face of :mod:`aiofit.nn.losses`: ``from aiofit import losses``."""

from __future__ import annotations

from .nn.losses import *  # noqa: F403
from .nn.losses import __all__  # noqa: F401
