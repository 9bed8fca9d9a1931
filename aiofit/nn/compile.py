"""What ``Model.compile`` resolves: the optimizer, the loss and the metrics.

Kept apart from the model so saving can rebuild exactly the same compile
arguments from their configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module

__all__ = ["Compiled", "resolve", "target_kind"]

# Loss class names -> the targets they take (for label checks and class_weight).
_KINDS = {
    "SparseCategoricalCrossentropy": "sparse",
    "CategoricalCrossentropy": "categorical",
    "BinaryCrossentropy": "binary",
    "MeanSquaredError": "regression",
    "MeanAbsoluteError": "regression",
    "Huber": "regression",
}


@dataclass
class Compiled:
    """The resolved compile arguments, plus what is needed to save them."""

    optimizer: Any
    loss: Any
    metrics: list[tuple[str, Any]] = field(default_factory=list)
    metric_ids: list[Any] = field(default_factory=list)
    kind: str | None = None
    weighted_metrics: list[tuple[str, Any]] = field(default_factory=list)
    weighted_metric_ids: list[Any] = field(default_factory=list)

    @property
    def metric_names(self) -> list[str]:
        """The logs keys of the metrics, unweighted first, then weighted."""
        return [name for name, _ in self.metrics + self.weighted_metrics]


def resolve(optimizer: Any, loss: Any, metrics: Any,
            weighted_metrics: Any = None) -> Compiled:
    """Turn compile's identifiers (names, instances, configs) into objects.

    Logs keys follow Keras 3's ``CompileMetrics``: metrics in order, a repeated
    name gets ``_1``, ``_2``...; then weighted metrics, where a name already taken
    becomes ``weighted_<name>`` (then ``weighted_<name>_1``...).
    """
    metrics = _metric_list(metrics, "metrics")
    weighted_metrics = _metric_list(weighted_metrics, "weighted_metrics")
    if optimizer is None:
        raise ValueError(f"compile() needs an optimizer. Received: optimizer={optimizer!r}")
    opt = optimizers_module.get(optimizer)
    loss_obj = None if loss is None else losses_module.get(loss)
    plain = _resolve_metrics(metrics, "metrics")
    weighted = _resolve_metrics(weighted_metrics, "weighted_metrics")
    plain_names, weighted_names = _unique_names(
        [str(m.name) for m in plain], [str(m.name) for m in weighted])
    taken = plain_names + weighted_names
    if len(set(taken)) != len(taken):
        # e.g. metrics named "acc" and "acc_1" plus a second "acc": Keras would
        # silently overwrite one logs entry.
        raise ValueError(
            f"The metrics' logs keys would collide: {taken}. Give the metrics distinct "
            f"names. Received: metrics={metrics!r}, weighted_metrics={weighted_metrics!r}"
        )
    return Compiled(
        optimizer=opt,
        loss=loss_obj,
        metrics=list(zip(plain_names, plain, strict=True)),
        metric_ids=list(metrics),
        kind=None if loss_obj is None else target_kind(loss_obj),
        weighted_metrics=list(zip(weighted_names, weighted, strict=True)),
        weighted_metric_ids=list(weighted_metrics),
    )


def _metric_list(metrics: Any, argument: str) -> list[Any]:
    if metrics is None:
        return []
    if isinstance(metrics, str | bytes) or not isinstance(metrics, list | tuple):
        raise TypeError(
            f"Expected `{argument}` argument to be a list or tuple. "
            f"Received instead: {argument}={metrics!r} of type {type(metrics).__name__}"
        )
    return list(metrics)


def _resolve_metrics(identifiers: list[Any], argument: str) -> list[Any]:
    resolved = [metrics_module.get(m) for m in identifiers]
    if any(str(m.name) == "loss" for m in resolved):
        raise ValueError(
            "A metric cannot be named 'loss': that logs key is the loss. "
            f"Received: {argument}={identifiers!r}"
        )
    return resolved


def _unique_names(plain: list[str], weighted: list[str]) -> tuple[list[str], list[str]]:
    """Keras 3's naming (``CompileMetrics.result``): see :func:`resolve`."""
    counters: dict[str, int] = {}

    def take(name: str) -> str:
        if name not in counters:
            counters[name] = 1
            return name
        index = counters[name]
        counters[name] += 1
        return f"{name}_{index}"

    plain_names = [take(name) for name in plain]
    weighted_names = [
        take(f"weighted_{name}" if name in counters else name) for name in weighted
    ]
    return plain_names, weighted_names


def target_kind(loss: Any) -> str | None:
    """``"sparse"``, ``"categorical"``, ``"binary"``, ``"regression"`` or None (unknown)."""
    kind = getattr(loss, "target_kind", None) or getattr(loss, "kind", None)
    if isinstance(kind, str):
        return kind
    for cls in type(loss).__mro__:
        if cls.__name__ in _KINDS:
            return _KINDS[cls.__name__]
    return None


_MODULES = {"optimizer": optimizers_module, "loss": losses_module, "metric": metrics_module}


def object_config(obj: Any, what: str) -> dict[str, Any]:
    """``{"class_name", "config"}`` of an optimizer, loss or metric, for saving.

    Only classes of aiofit's own modules can be rebuilt by name when loading, so
    anything else is refused here, before a file is written.
    """
    name = type(obj).__name__
    module = _MODULES[what]
    if getattr(module, name, None) is not type(obj) or name in ("Metric", "Loss"):
        raise ValueError(
            f"Cannot save a model compiled with a custom {what}: only aiofit's built-in "
            f"{what}s can be rebuilt when loading. Received: {what}={obj!r}"
        )
    return {"class_name": name, "config": obj.get_config()}


def metric_id(identifier: Any, metric: Any) -> Any:
    """How a metric is written in a saved file: its name if it was given by name."""
    if isinstance(identifier, str):
        return identifier
    return object_config(metric, "metric")


def from_config(module: Any, spec: dict[str, Any]) -> Any:
    """Rebuild an optimizer, loss or metric saved by :func:`object_config`."""
    cls = getattr(module, spec["class_name"], None)
    if cls is None:
        raise ValueError(f"Unknown class {spec['class_name']!r} in {module.__name__}")
    config = spec["config"]
    if hasattr(cls, "from_config"):
        return cls.from_config(config)
    return cls(**config)
