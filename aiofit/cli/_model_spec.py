"""A model described by flags or a small JSON/TOML config, built into a ``Sequential``.

The config is flat; its keys are the ``train`` flags' names with underscores::

    # model.toml
    layers = [64, 32]          # hidden Dense units
    activation = "relu"
    dropout = 0.1              # a Dropout after each hidden layer (0: none)
    outputs = 10               # output units (inferred from file data when omitted)
    loss = "sparse_categorical_crossentropy"
    optimizer = "adam"
    learning_rate = 0.001
    metrics = ["accuracy"]
    epochs = 20
    batch_size = 32
    seed = 0

A flag given on the command line wins over the config's value.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import layers as layer_lib
from .. import optimizers
from ..nn import Sequential
from ._common import UsageError

__all__ = ["ModelSpec", "infer_outputs", "load_config"]

_OUTPUT_ACTIVATION = {
    "sparse_categorical_crossentropy": "softmax",
    "categorical_crossentropy": "softmax",
    "binary_crossentropy": "sigmoid",
}
_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
               "adagrad": "Adagrad"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything ``train`` needs to build, compile and fit a model."""

    layers: tuple[int, ...] = (64,)
    activation: str = "relu"
    dropout: float = 0.0
    outputs: int | None = None
    output_activation: str | None = None
    loss: str = "sparse_categorical_crossentropy"
    optimizer: str = "adam"
    learning_rate: float | None = None
    metrics: tuple[str, ...] | None = None
    epochs: int = 10
    batch_size: int = 32
    seed: int | None = 0

    def merged(self, overrides: dict[str, Any]) -> ModelSpec:
        """A copy with every non-None value of ``overrides`` applied (and checked)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UsageError(f"unknown model setting(s) {unknown}; known: {sorted(known)}. "
                             f"Received: {unknown}")
        values = {k: _coerce(k, v) for k, v in overrides.items() if v is not None}
        return replace(self, **values)

    def build(self) -> Sequential:
        """The compiled model; builds its weights from the first batch it sees."""
        if self.outputs is None:
            raise UsageError("the number of output units is unknown for a stream: pass "
                             "--outputs (e.g. the number of classes). Received: outputs=None")
        stack: list[Any] = []
        for units in self.layers:
            stack.append(layer_lib.Dense(units, activation=self.activation))
            if self.dropout:
                stack.append(layer_lib.Dropout(self.dropout))
        out_activation = self.output_activation or _OUTPUT_ACTIVATION.get(self.loss, "linear")
        stack.append(layer_lib.Dense(self.outputs, activation=out_activation))
        model = Sequential(stack, seed=self.seed)
        model.compile(optimizer=self._optimizer(), loss=self.loss, metrics=self._metrics())
        return model

    def _optimizer(self) -> Any:
        if self.learning_rate is None:
            return self.optimizer
        name = _OPTIMIZERS.get(self.optimizer.lower())
        if name is None:
            raise UsageError(f"unknown optimizer; known: {sorted(_OPTIMIZERS)}. "
                             f"Received: {self.optimizer!r}")
        return getattr(optimizers, name)(learning_rate=self.learning_rate)

    def _metrics(self) -> list[str]:
        if self.metrics is not None:
            return list(self.metrics)
        return ["accuracy"] if "crossentropy" in self.loss else []


def _coerce(key: str, value: Any) -> Any:
    """A config or flag value as the field's type; UsageError when it cannot be."""
    try:
        if key == "layers":
            items = value.split(",") if isinstance(value, str) else value
            units = tuple(int(u) for u in items if str(u).strip())
            if any(u < 1 for u in units):
                raise ValueError
            return units
        if key == "metrics":
            items = value.split(",") if isinstance(value, str) else value
            return tuple(str(m).strip() for m in items if str(m).strip())
        if key in ("outputs", "epochs", "batch_size", "seed"):
            number = int(value)
            inexact = not isinstance(value, str) and number != value
            if inexact or (key != "seed" and number < 1):
                raise ValueError
            return number
        if key in ("dropout", "learning_rate"):
            rate = float(value)
            if not (0 <= rate < 1 if key == "dropout" else rate > 0):
                raise ValueError
            return rate
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise UsageError(f"bad value for {key!r}. Received: {value!r}") from None


def load_config(path: Path) -> dict[str, Any]:
    """The settings in a ``.toml`` or ``.json`` config file, as a flat dict."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            with path.open("rb") as f:
                config = tomllib.load(f)
        elif suffix == ".json":
            config = json.loads(path.read_text())
        else:
            raise UsageError(f"--config must be a .toml or .json file. Received: {str(path)!r}")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config: cannot parse {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise UsageError(f"--config must hold a table of settings. Received: {config!r}")
    return {str(k).replace("-", "_"): v for k, v in config.items()}


def infer_outputs(y: np.ndarray, loss: str) -> int:
    """Output units for targets ``y``: classes for sparse labels, else y's width."""
    if loss == "sparse_categorical_crossentropy":
        return int(np.max(y)) + 1
    return 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
