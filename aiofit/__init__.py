"""aiofit: Keras's fit loop rebuilt for async Python."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._exceptions import DataError
from ._protocol import Trainable

try:
    __version__ = version("aiofit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["DataError", "Trainable", "__version__"]
