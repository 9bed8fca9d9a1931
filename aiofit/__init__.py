"""aiofit: Keras's fit loop rebuilt for async Python.

Example:
    >>> import aiofit
    >>> from aiofit import layers
    >>> model = aiofit.Sequential([layers.Input(shape=(4,)), layers.Dense(1)], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> history = aiofit.run(model.fit(x, y, epochs=3))  # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import (
    callbacks,
    initializers,
    layers,
    losses,
    metrics,
    optimizers,
    regularizers,
    sources,
)
from ._exceptions import DataError
from ._protocol import Trainable
from .callbacks import History
from .engine import evaluate, fit, predict, run
from .nn import Model, Sequential, load_model

try:
    __version__ = version("aiofit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "DataError",
    "History",
    "Model",
    "Sequential",
    "Trainable",
    "__version__",
    "callbacks",
    "evaluate",
    "fit",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "optimizers",
    "predict",
    "regularizers",
    "run",
    "sources",
]
