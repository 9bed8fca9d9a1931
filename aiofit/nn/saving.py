"""Save and load a whole model in one file, without pickle.

The file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays) holding:

* ``__aiofit__``: a JSON document (as uint8 bytes) with a format marker and
  version, the model's class and config (layers via ``layers.serialize``), the
  compile config (optimizer, loss, metrics and weighted metrics by name or
  config), the rng state, and the layout
  of the optimizer state;
* ``weight_<i>``: ``model.get_weights()`` in order;
* ``optimizer_<i>``: the arrays of ``optimizer.get_state()``.

A weights file (``save_weights``) is the same archive with only the
``weight_<i>`` entries; ``load_weights`` reads the weights of either kind.

Writing goes through :func:`aiofit._atomic.atomic_write`: a crash or an error
leaves the previous file intact and no temp file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._atomic import atomic_write
from . import compile as compile_module
from . import losses, metrics, optimizers
from .model import Model
from .sequential import Sequential

__all__ = ["load_model", "load_weights", "save_model", "save_weights"]

FORMAT = "aiofit.model"
VERSION = 1
_HEADER = "__aiofit__"
_MODEL_CLASSES: dict[str, type[Sequential]] = {"Sequential": Sequential}


def save_model(model: Model, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring)."""
    get_config = getattr(model, "get_config", None)
    if type(model).__name__ not in _MODEL_CLASSES or get_config is None:
        raise TypeError(f"save() supports Sequential models. Received: {model!r}")
    arrays: dict[str, np.ndarray] = {}
    for i, w in enumerate(model.get_weights()):
        arrays[f"weight_{i}"] = w
    header = {
        "format": FORMAT,
        "version": VERSION,
        "class_name": type(model).__name__,
        "config": get_config(),
        "compile": _compile_config(model, arrays),
        "rng_state": model.rng.bit_generator.state,
        "layer_rng_states": _layer_rng_states(model),
        "num_weights": len([k for k in arrays if k.startswith("weight_")]),
    }
    text = json.dumps(header, allow_nan=True)
    arrays[_HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _write_npz(path, arrays)


def _write_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def _own_generators(model: Model) -> dict[int, np.random.Generator]:
    """Layers with a generator of their own (e.g. ``Dropout(seed=...)``), by index."""
    found = {}
    for k, layer in enumerate(model._layers):
        rng = getattr(layer, "rng", None)
        if isinstance(rng, np.random.Generator) and rng is not model.rng:
            found[k] = rng
    return found


def _layer_rng_states(model: Model) -> dict[str, Any]:
    return {str(k): rng.bit_generator.state for k, rng in _own_generators(model).items()}


def _compile_config(model: Model, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    compiled = model._compiled
    if compiled is None:
        return None
    state = None
    if model._optimizer_ready:
        state = _to_tree(compiled.optimizer.get_state(), arrays)
    return {
        "optimizer": compile_module.object_config(compiled.optimizer, "optimizer"),
        "loss": None if compiled.loss is None else compile_module.object_config(
            compiled.loss, "loss"),
        "metrics": [compile_module.metric_id(i, m)
                    for i, (_, m) in zip(compiled.metric_ids, compiled.metrics, strict=True)],
        "weighted_metrics": [
            compile_module.metric_id(i, m) for i, (_, m) in
            zip(compiled.weighted_metric_ids, compiled.weighted_metrics, strict=True)],
        "optimizer_state": state,
    }


def _to_tree(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-able copy of ``obj`` with every array moved into ``arrays``."""
    if isinstance(obj, np.ndarray):
        key = f"optimizer_{sum(k.startswith('optimizer_') for k in arrays)}"
        arrays[key] = obj
        return {"__ndarray__": key}
    if isinstance(obj, np.generic):
        key = f"optimizer_{sum(k.startswith('optimizer_') for k in arrays)}"
        arrays[key] = np.asarray(obj)
        return {"__scalar__": key}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"optimizer state keys must be strings. Received: {list(obj)}")
        return {k: _to_tree(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_tree(v, arrays) for v in obj]
    return obj


def _from_tree(obj: Any, data: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"}:
            return np.array(data[obj["__ndarray__"]])
        if set(obj) == {"__scalar__"}:
            return data[obj["__scalar__"]][()]
        return {k: _from_tree(v, data) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_tree(v, data) for v in obj]
    return obj


def load_model(path: str | os.PathLike[str]) -> Model:
    """Load a model written by ``Model.save``: compiled, with bit-identical weights,
    optimizer state and rng state, so training continues exactly where it stopped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a valid aiofit model file (the message says why).
    """
    name = os.fspath(path)
    with _open_archive(name, "model") as data:
        return _load(data, name)


def save_weights(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model.get_weights()`` to ``path`` atomically: one ``.npz``, no pickle.

    The arrays are ``weight_0``, ``weight_1``... in ``get_weights()`` order, so
    the file also opens by hand with ``np.load(path, allow_pickle=False)``.
    ``model`` may be any object with ``get_weights()`` (any ``aiofit.Trainable``).
    """
    _write_npz(path, {f"weight_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})


def load_weights(model: Any, path: str | os.PathLike[str]) -> None:
    """Set ``model``'s weights from a file of :func:`save_weights` or :func:`save_model`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not an aiofit weights or model file, or its
            weights do not fit the model (the message names the path and the
            first weight that does not match); the model is then unchanged.
    """
    name = os.fspath(path)
    with _open_archive(name, "weights") as data:
        weights = _weight_arrays(data, name)
    try:
        model.set_weights(weights)
    except ValueError as exc:
        raise ValueError(f"Cannot load the weights in {name!r} into this model: {exc}") from exc


def _weight_arrays(data: Any, name: str) -> list[np.ndarray]:
    keys = [f"weight_{i}" for i in range(sum(k.startswith("weight_") for k in data.files))]
    # A whole-model file also holds its header and optimizer state; a weights file nothing else.
    extra = set() if _HEADER in data.files else set(data.files) - set(keys)
    if extra or not set(keys) <= set(data.files):
        raise _FileFormatError(
            f"Cannot load weights from {name!r}: not an aiofit weights file (expected only "
            f"entries weight_0, weight_1...). Received entries: {sorted(data.files)[:8]}")
    return [np.array(data[key]) for key in keys]


class _FileFormatError(ValueError):
    """A file that is readable but not an aiofit file (message already names it)."""


# What a damaged or foreign file can raise from numpy, zipfile, json or the configs.
_CORRUPT = (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, TypeError,
            zlib.error)


@contextlib.contextmanager
def _open_archive(name: str, what: str) -> Iterator[Any]:
    """The ``.npz`` at ``name``; anything it (or the ``with`` body) raises because the
    file is damaged or foreign becomes a ValueError naming the file."""
    with open(name, "rb") as f:
        try:
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise _FileFormatError(f"Cannot load {what} from {name!r}: it is a single numpy "
                                       f"array, not an aiofit {what} file")
            with data:
                yield data
        except _FileFormatError:
            raise
        except _CORRUPT as exc:
            raise _FileFormatError(
                f"Cannot load {what} from {name!r}: the file is not a readable aiofit {what} "
                f"file; it is corrupt, truncated or of another format. "
                f"Received: {type(exc).__name__}: {exc}") from exc


def _load(data: Any, name: str) -> Model:
    if _HEADER not in data.files:
        raise _FileFormatError(f"Cannot load model from {name!r}: not an aiofit model file "
                         f"(no {_HEADER!r} entry). Received entries: {sorted(data.files)[:8]}")
    header = json.loads(bytes(data[_HEADER]).decode("utf-8"))
    _check_header(header, name)
    model = _MODEL_CLASSES[header["class_name"]].from_config(header["config"])
    weights = [np.array(data[f"weight_{i}"]) for i in range(header["num_weights"])]
    compiled = header["compile"]
    if compiled is not None:
        _compile_from(model, compiled)
    if weights:
        model.set_weights(weights)
    if compiled is not None and compiled["optimizer_state"] is not None:
        model._prepare_optimizer()
        model.optimizer.set_state(_from_tree(compiled["optimizer_state"], data))
    model.rng.bit_generator.state = header["rng_state"]
    own = _own_generators(model)
    for k, state in header.get("layer_rng_states", {}).items():
        own[int(k)].bit_generator.state = state
    return model


def _check_header(header: Any, name: str) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _FileFormatError(f"Cannot load model from {name!r}: not an aiofit model file "
                         f"(format marker missing). Received: {str(header)[:80]}")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise _FileFormatError(f"Cannot load model from {name!r}: file format version {version} "
                         f"is newer than this aiofit reads ({VERSION}). Received: {version}")
    if header.get("class_name") not in _MODEL_CLASSES:
        raise _FileFormatError(f"Cannot load model from {name!r}: unknown model class. "
                         f"Received: {header.get('class_name')!r}")


def _compile_from(model: Model, compiled: dict[str, Any]) -> None:
    optimizer = compile_module.from_config(optimizers, compiled["optimizer"])
    loss = None if compiled["loss"] is None else compile_module.from_config(
        losses, compiled["loss"])
    model.compile(optimizer=optimizer, loss=loss, metrics=_metric_ids(compiled["metrics"]),
                  weighted_metrics=_metric_ids(compiled.get("weighted_metrics", [])))


def _metric_ids(saved: list[Any]) -> list[Any]:
    return [m if isinstance(m, str) else compile_module.from_config(metrics, m) for m in saved]
