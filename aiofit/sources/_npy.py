"""``.npy`` records inside a wire frame: read without pickle, written with cached headers.

Part of :mod:`aiofit.sources.wire` (see its docs for the rules enforced here).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence

import numpy as np

from .._exceptions import DataError, ProtocolError

__all__ = ["check_arrays", "npy_header", "read_arrays"]

_NPY_MAGIC = b"\x93NUMPY"
_NPY_MAX_HEADER = 10_000  # numpy's own limit for a header read without allow_pickle
_KINDS = "biufc"


def read_arrays(payload: np.ndarray, count: int, where: str) -> tuple[np.ndarray, ...]:
    """The ``count`` arrays filling ``payload`` (uint8) exactly, as views of it (no copy)."""
    arrays = []
    pos = 0
    for i in range(count):
        arr, pos = _read_npy(payload, pos, f"{where}, array {i}")
        arrays.append(arr)
    if pos != len(payload):
        raise ProtocolError(
            f"{where}: {len(payload) - pos} bytes left over after {count} arrays; the "
            f"payload length must match the arrays exactly. Received: payload length="
            f"{len(payload)}"
        )
    check_arrays(arrays, where, error=ProtocolError)
    return tuple(arrays)


def _read_npy(payload: np.ndarray, pos: int, where: str) -> tuple[np.ndarray, int]:
    """Parse one ``.npy`` record at ``pos``; no data is copied, the array views ``payload``."""
    shape, fortran, dtype, data_start = _read_npy_header(payload, pos, where)
    _check_dtype(dtype, where, ProtocolError)
    if any(n < 0 for n in shape):
        raise ProtocolError(f"{where}: negative dimension. Received: shape={shape}")
    if not shape:
        raise ProtocolError(f"{where}: a scalar has no batch dimension. Received: shape=()")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > len(payload) - data_start:
        raise ProtocolError(
            f"{where}: the .npy header claims {nbytes} bytes of data but only "
            f"{len(payload) - data_start} remain in the payload. Received: shape={shape}, "
            f"dtype={dtype.str}"
        )
    flat = np.frombuffer(payload, dtype=dtype, count=count, offset=data_start)
    arr = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    return arr, data_start + nbytes


def _read_npy_header(
    payload: np.ndarray, pos: int, where: str
) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    prefix = bytes(payload[pos : pos + 12])
    if len(prefix) < 10 or prefix[:6] != _NPY_MAGIC:
        raise ProtocolError(
            f"{where}: not a .npy record (it must start with {_NPY_MAGIC!r}). Received: {prefix!r}"
        )
    major = prefix[6]
    if major not in (1, 2):
        raise ProtocolError(
            f"{where}: .npy format version {major}.{prefix[7]} is not supported (use 1.0 "
            f"or 2.0). Received: version {major}.{prefix[7]}"
        )
    size_len = 2 if major == 1 else 4
    if len(prefix) < 8 + size_len:
        raise ProtocolError(f"{where}: truncated .npy header. Received: {prefix!r}")
    hlen = int.from_bytes(prefix[8 : 8 + size_len], "little")
    if hlen > _NPY_MAX_HEADER:
        raise ProtocolError(
            f"{where}: .npy header of {hlen} bytes is over the {_NPY_MAX_HEADER}-byte "
            f"limit. Received: header length={hlen}"
        )
    end = pos + 8 + size_len + hlen
    if end > len(payload):
        raise ProtocolError(
            f"{where}: the .npy header runs past the end of the payload. "
            f"Received: header length={hlen}"
        )
    raw = bytes(payload[pos + 8 : end])
    try:
        # Parsing a header evaluates a literal: cache it, a stream repeats a few shapes.
        parse = _parse_npy_header if hlen <= 256 else _parse_npy_header.__wrapped__
        shape, fortran, dtype = parse(major, raw)
    except Exception as exc:  # numpy reports bad headers as several exception types
        raise ProtocolError(
            f"{where}: malformed .npy header ({exc}). Received: {raw[size_len:][:200]!r}"
        ) from exc
    return shape, fortran, dtype, end


@functools.lru_cache(maxsize=128)
def _parse_npy_header(major: int, raw: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
    shape, fortran, dtype = read(io.BytesIO(raw), max_header_size=_NPY_MAX_HEADER)
    return tuple(int(n) for n in shape), bool(fortran), dtype


@functools.lru_cache(maxsize=128)
def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` 1.0 header of a C-ordered array (numpy builds it slowly: cached)."""
    head = io.BytesIO()
    info = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(head, info)
    return head.getvalue()


def _check_dtype(dtype: np.dtype, where: str, error: type[ValueError]) -> None:
    if dtype.hasobject:
        raise error(
            f"{where}: object arrays are not allowed (they would need pickle, which this "
            f"format never uses). Received: dtype={dtype}"
        )
    if dtype.kind not in _KINDS or dtype.itemsize == 0 or dtype.subdtype is not None:
        raise error(
            f"{where}: only bool, integer, float and complex arrays can be sent. "
            f"Received: dtype={dtype.str}"
        )


def check_arrays(
    arrays: Sequence[np.ndarray], where: str, error: type[ValueError] | None = None
) -> None:
    """Raise ``error`` (DataError by default) unless these arrays make a sendable batch."""
    error = error or DataError
    if not 1 <= len(arrays) <= 3:
        raise error(
            f"{where}: a batch is 1 to 3 arrays (x, y, sample_weight). "
            f"Received: {len(arrays)} arrays"
        )
    for arr in arrays:
        _check_dtype(arr.dtype, where, error)
        if arr.ndim == 0:
            raise error(f"{where}: a scalar has no batch dimension. Received: shape=()")
    lengths = [int(a.shape[0]) for a in arrays]
    if len(set(lengths)) > 1:
        raise error(
            f"{where}: the arrays of a batch must have the same length (samples). "
            f"Received: lengths {lengths}"
        )
