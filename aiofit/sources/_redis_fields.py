"""How a Redis Streams entry holds one sample: :class:`StreamField`, encoding and decoding.

An entry is a flat map of field names to byte strings. A *fields spec* says, for
each role of the batch (``"x"``, ``"y"`` and optionally ``"sample_weight"``),
which entry field holds it and how:

* ``encoding="raw"``: the array's bytes, little-endian, in ``dtype``, C order
  (``np.asarray(v, dtype).astype(dtype.newbyteorder("<")).tobytes()``); the
  reader reshapes them to ``shape`` (None: a 1-D vector of whatever length).
  Compact, and easy to produce from any language.
* ``encoding="json"``: a JSON number or (nested) list of numbers, read as
  ``dtype``; with ``shape`` given, the reader checks it.

:func:`encode_entry` writes an entry that a reader with the same spec reads back
exactly; :func:`decode_batch` stacks entries into one ``(x, y[, sample_weight])``
batch and raises :class:`aiofit.DataError` naming the entry id for a bad entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._exceptions import DataError

__all__ = ["DEFAULT_FIELDS", "StreamField", "decode_batch", "encode_entry", "resolve_fields"]

ROLES = ("x", "y", "sample_weight")
ENCODINGS = ("raw", "json")
_NUMERIC = "biuf"  # bool, signed, unsigned, float: never object, strings or void


@dataclass(frozen=True)
class StreamField:
    """Where one role of a sample lives in a stream entry, and how it is encoded.

    Args:
        name: The entry's field name.
        dtype: The array's dtype (numeric only).
        shape: One sample's shape; ``()`` for a scalar (a sparse label). None:
            raw bytes read as a 1-D vector, JSON read as it nests.
        encoding: ``"raw"`` (little-endian bytes) or ``"json"``.

    Example:
        >>> fields = {"x": StreamField("pixels", "float32", (64,)),
        ...           "y": StreamField("label", "int64", ())}
    """

    name: str
    dtype: str = "float32"
    shape: tuple[int, ...] | None = None
    encoding: str = "raw"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"StreamField needs a field name. Received: name={self.name!r}")
        kind = np.dtype(self.dtype).kind
        if kind not in _NUMERIC:
            raise TypeError(
                f"StreamField {self.name!r}: dtype must be numeric (bool, int, uint or float). "
                f"Received: dtype={self.dtype!r}"
            )
        if self.encoding not in ENCODINGS:
            raise ValueError(
                f"StreamField {self.name!r}: encoding must be one of {ENCODINGS}. "
                f"Received: encoding={self.encoding!r}"
            )
        if self.shape is not None:
            shape = tuple(self.shape)
            if not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError(
                    f"StreamField {self.name!r}: shape must be a tuple of ints >= 0 or None. "
                    f"Received: shape={self.shape!r}"
                )
            object.__setattr__(self, "shape", shape)

    @property
    def wire_dtype(self) -> np.dtype[Any]:
        """The dtype of raw bytes: ``dtype`` in little-endian order."""
        return np.dtype(self.dtype).newbyteorder("<")


DEFAULT_FIELDS: dict[str, StreamField] = {"x": StreamField("x"), "y": StreamField("y")}


def resolve_fields(fields: Mapping[str, StreamField | str] | None) -> dict[str, StreamField]:
    """Check a fields spec; a plain string is a raw float32 field of that name.

    Raises:
        ValueError: an unknown role, or no ``"x"``.
        TypeError: a spec that is neither a StreamField nor a field name.
    """
    if fields is None:
        return dict(DEFAULT_FIELDS)
    if not isinstance(fields, Mapping) or "x" not in fields:
        raise ValueError(
            f"fields must map 'x' (and 'y', ...) to entry fields. Received: {fields!r}"
        )
    resolved: dict[str, StreamField] = {}
    for role, spec in fields.items():
        if role not in ROLES:
            raise ValueError(
                f"fields: unknown role {role!r}; expected one of {ROLES}. Received: {role!r}"
            )
        if isinstance(spec, str):
            spec = StreamField(spec)
        if not isinstance(spec, StreamField):
            raise TypeError(
                f"fields[{role!r}] must be a StreamField or a field name. Received: {spec!r}"
            )
        resolved[role] = spec
    return {role: resolved[role] for role in ROLES if role in resolved}


def encode_entry(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    fields: Mapping[str, StreamField | str] | None = None,
) -> dict[str, bytes]:
    """One sample as a stream entry (a map for ``XADD``) that the source reads back exactly.

    Args:
        x: The sample's input.
        y: Its target (required when the spec has ``"y"``).
        sample_weight: Its weight (required when the spec has ``"sample_weight"``).
        fields: The spec the reader uses (default: raw float32 fields ``x``, ``y``).

    Raises:
        ValueError: a value the spec has no field for (or a missing one), or a
            shape other than the spec's.
        TypeError: a value that cannot be cast to the field's dtype safely.

    Example:
        >>> await client.xadd("train", encode_entry(x[i], y[i], fields=fields))  # doctest: +SKIP
    """
    spec = resolve_fields(fields)
    values = {"x": x, "y": y, "sample_weight": sample_weight}
    entry: dict[str, bytes] = {}
    for role, value in values.items():
        field = spec.get(role)
        if (value is None) != (field is None):
            has = "has no field for it" if field is None else "needs it"
            raise ValueError(
                f"encode_entry: the fields spec {has}. Received: {role}={value!r:.80}"
            )
        if field is not None:
            entry[field.name] = _encode(field, value)
    return entry


def _encode(field: StreamField, value: Any) -> bytes:
    array = np.asarray(value)
    if array.dtype.kind not in _NUMERIC or not np.can_cast(array.dtype, field.dtype, "same_kind"):
        raise TypeError(
            f"encode_entry: field {field.name!r} holds {field.dtype}; cannot cast safely. "
            f"Received: dtype {array.dtype}"
        )
    if field.shape is not None and array.shape != field.shape:
        raise ValueError(
            f"encode_entry: field {field.name!r} holds samples of shape {field.shape}. "
            f"Received: shape {array.shape}"
        )
    if field.encoding == "json":
        return json.dumps(array.astype(field.dtype).tolist()).encode()
    return array.astype(field.wire_dtype).tobytes(order="C")


def decode_batch(
    entries: Sequence[tuple[str, Mapping[bytes, bytes]]], fields: Mapping[str, StreamField]
) -> tuple[np.ndarray, ...]:
    """Stack the entries' samples into ``(x, y[, sample_weight])``.

    Raises:
        DataError: an entry lacks a field, or its value cannot be read as the
            spec says (the message names the entry id and the field).
    """
    columns: list[np.ndarray] = []
    for role, field in fields.items():
        samples = [_decode(field, entry_id, data) for entry_id, data in entries]
        shapes = {s.shape for s in samples}
        if len(shapes) > 1:
            first = samples[0].shape
            odd = next(i for i, s in enumerate(samples) if s.shape != first)
            raise DataError(
                f"entry {entries[odd][0]}: field {field.name!r} ({role}) has shape "
                f"{samples[odd].shape}, but entry {entries[0][0]} of the same batch has {first}. "
                f"Received: shape {samples[odd].shape}"
            )
        columns.append(np.stack(samples))
    return tuple(columns)


def _decode(field: StreamField, entry_id: str, data: Mapping[bytes, bytes]) -> np.ndarray:
    raw = data.get(field.name.encode())
    if raw is None:
        names = sorted(k.decode(errors="replace") for k in data)
        raise DataError(f"entry {entry_id}: no field {field.name!r}. Received: fields {names}")
    try:
        if field.encoding == "json":
            return _from_json(field, raw)
        return _from_raw(field, raw)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"entry {entry_id}: field {field.name!r} cannot be read as {field.encoding} "
            f"{field.dtype} of shape {field.shape}: {exc}. Received: {raw[:60]!r}"
        ) from exc


def _from_raw(field: StreamField, raw: bytes) -> np.ndarray:
    itemsize = field.wire_dtype.itemsize
    if len(raw) % itemsize:
        raise ValueError(f"{len(raw)} bytes is not a multiple of the item size {itemsize}")
    array = np.frombuffer(raw, dtype=field.wire_dtype).astype(field.dtype)
    return array if field.shape is None else array.reshape(field.shape)


def _from_json(field: StreamField, raw: bytes) -> np.ndarray:
    value = json.loads(raw)
    if not _all_numbers(value):
        raise ValueError("not a number or a list of numbers")
    array = np.asarray(value, dtype=field.dtype)
    if field.shape is not None and array.shape != field.shape:
        raise ValueError(f"shape {array.shape}")
    return array


def _all_numbers(value: Any) -> bool:
    if isinstance(value, list):
        return all(_all_numbers(v) for v in value)
    return isinstance(value, int | float)
