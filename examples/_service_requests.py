"""Request parsing for ``examples/service.py``: each request's body as checked values.

Every function here either returns what the request asked for or raises a
Starlette ``HTTPException`` whose detail names the problem and ends with the
received value; the service turns it into ``{"error": detail}`` with its status
(413 too large, 422 invalid, 400 unreadable).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.exceptions import HTTPException
from starlette.requests import Request

from aiofit import datasets
from aiofit.sources import from_tcp

MAX_BODY = 64 * 2**20  # bytes of an upload
MAX_PREDICT_ROWS = 10_000
MAX_INT = 1_000_000  # for epochs, batch_size, steps_per_epoch, seed
NPZ_TYPES = ("application/x-npz", "application/octet-stream")


def fail(status: int, message: str) -> HTTPException:
    """The error to raise for a bad request (the app answers ``{"error": message}``)."""
    return HTTPException(status, message)


async def read_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise fail(413, f"the body exceeds {MAX_BODY} bytes. Received: more than {size}")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict[str, Any]:
    raw = await read_body(request)
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(400, f"the body is not valid JSON ({exc}). Received: {raw[:80]!r}") from exc
    if not isinstance(body, dict):
        raise fail(422, f"the body must be a JSON object. Received: {type(body).__name__}")
    return body


def _query_value(text: str) -> Any:
    """A query-string option as the JSON value it stands for."""
    return int(text) if text.isdigit() else {"true": True, "false": False}.get(text, text)


def _int(options: Any, name: str, default: int | None, low: int = 1) -> Any:
    value = options.get(name, default)
    if value is None and default is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_INT:
        raise fail(422, f"{name} must be an integer in [{low}, {MAX_INT}]. "
                        f"Received: {name}={value!r}")  # fmt: skip
    return value


def _bool(options: Any, name: str, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise fail(422, f"{name} must be true or false. Received: {name}={value!r}")
    return value


def _array(value: Any, name: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise fail(422, f"{name} must be a rectangular array ({exc}). Received: {name}") from exc
    if array.ndim != ndim or array.size == 0 or array.dtype.kind not in "iuf":
        raise fail(
            422, f"{name} must be a non-empty {ndim}-D array of numbers. Received: "
            f"shape {array.shape}, dtype {array.dtype}")  # fmt: skip
    return array


def check_inputs(x: Any, features: int, name: str = "x") -> np.ndarray:
    """``x`` as float32 ``(n, features)`` with finite values, or an HTTP 422."""
    array = _array(x, name, 2).astype(np.float32)
    if array.shape[1] != features:
        raise fail(422, f"{name} must have {features} features per row. "
                        f"Received: shape {array.shape}")  # fmt: skip
    if not np.isfinite(array).all():
        raise fail(422, f"{name} must hold finite numbers. Received: NaN or inf in {name}")
    return array


def check_dataset(x: Any, y: Any, features: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """An uploaded dataset as ``(x float32, y int64)``, or an HTTP 422 naming the problem."""
    xa, ya = check_inputs(x, features), _array(y, "y", 1)
    if ya.dtype.kind == "f" or len(ya) != len(xa):
        raise fail(422, f"y must hold one integer label per row of x. Received: {len(ya)} "
                        f"labels of dtype {ya.dtype} for {len(xa)} rows")  # fmt: skip
    if ya.min() < 0 or ya.max() >= classes:
        raise fail(422, f"labels must be in [0, {classes}). "
                        f"Received: labels from {ya.min()} to {ya.max()}")  # fmt: skip
    return xa, ya.astype(np.int64)


@dataclass
class TrainSpec:
    """What one ``POST /train`` asked for."""

    x: Any
    y: Any
    source: str
    epochs: int = 5
    batch_size: int = 32
    steps_per_epoch: int | None = None
    seed: int = 0
    shuffle: bool = True


def _tcp_source(spec: Any) -> Any:
    if not isinstance(spec, dict) or not isinstance(spec.get("host"), str):
        raise fail(422, f'data.tcp must be {{"host": str, "port": int}}. Received: {spec!r}')
    try:
        return from_tcp(spec["host"], spec.get("port"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise fail(422, str(exc)) from exc


async def parse_train(request: Request, features: int, classes: int) -> TrainSpec:
    """The run a ``POST /train`` request describes (JSON or an .npz upload)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    data: Any = None
    if kind in NPZ_TYPES:
        options = {k: _query_value(v) for k, v in request.query_params.items()}
        try:
            with np.load(io.BytesIO(await read_body(request)), allow_pickle=False) as npz:
                x, y = npz["x"], npz["y"]
        except (OSError, ValueError, KeyError) as exc:
            raise fail(422, f"the upload must be an .npz with arrays x and y. "
                            f"Received: {exc}") from exc  # fmt: skip
    else:
        options = await read_json(request)
        data = options.get("data", "digits")
    if data == "digits":
        x, y = datasets.load_digits()
    elif isinstance(data, dict) and "tcp" in data:
        x, y = _tcp_source(data["tcp"]), None
    elif isinstance(data, dict) and {"x", "y"} <= data.keys():
        x, y = data["x"], data["y"]
    elif data is not None:
        raise fail(422, 'data must be "digits", {"x": [[...]], "y": [...]} or {"tcp": '
                        f'{{"host": ..., "port": ...}}}}. Received: {data!r:.80}')  # fmt: skip
    if y is not None:
        x, y = check_dataset(x, y, features, classes)
    spec = TrainSpec(
        x, y, "tcp" if y is None else "digits" if data == "digits" else "upload",
        epochs=_int(options, "epochs", 5), batch_size=_int(options, "batch_size", 32),
        steps_per_epoch=_int(options, "steps_per_epoch", None),
        seed=_int(options, "seed", 0, low=0), shuffle=_bool(options, "shuffle", True),
    )  # fmt: skip
    if spec.source == "tcp" and spec.epochs > 1 and spec.steps_per_epoch is None:
        raise fail(422, "a TCP stream is one-shot: epochs > 1 needs steps_per_epoch. "
                        f"Received: epochs={spec.epochs}, steps_per_epoch=None")  # fmt: skip
    return spec


async def parse_predict(request: Request, features: int) -> np.ndarray:
    """The inputs of a ``POST /predict`` body ``{"x": [[...]]}``, as float32 rows."""
    body = await read_json(request)
    if "x" not in body:
        raise fail(422, f'the body must be {{"x": [[...]]}}. Received: keys {sorted(body)}')
    x = check_inputs(body["x"], features)
    if len(x) > MAX_PREDICT_ROWS:
        raise fail(413, f"at most {MAX_PREDICT_ROWS} rows per request. Received: {len(x)}")
    return x
