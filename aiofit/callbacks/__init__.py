"""Callbacks: Keras's hooks into fit/evaluate/predict, plain or ``async def``."""

from __future__ import annotations

from .base import Callback
from .callback_list import CallbackList
from .history import History
from .lambda_callback import LambdaCallback
from .progbar_logger import ProgbarLogger
from .terminate_on_nan import TerminateOnNaN

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "LambdaCallback",
    "ProgbarLogger",
    "TerminateOnNaN",
]
