"""RemoteMonitor: posts each epoch's logs to an HTTP server without stalling training.

Why a private thread rather than a task in the caller's loop: callback hooks are
not context managers, and ``fit`` opens its data pipeline's task groups after
``on_train_begin`` and closes them before ``on_train_end``, so a task group
held from one hook to the other would be misnested. The sender therefore owns
a thread running its own asyncio loop (with ``httpx.AsyncClient``); hooks only
hand it a payload (a non-blocking ``call_soon_threadsafe``), so the caller's
loop may be asyncio, uvloop or trio. ``on_train_end`` flushes within
``timeout`` and joins the thread, so nothing outlives ``fit``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import anyio
import numpy as np

from .base import Callback, Logs

__all__ = ["RemoteMonitor"]

#: The name of the sender thread (one per fit run, joined in ``on_train_end``).
THREAD_NAME = "aiofit-RemoteMonitor"

_STOP = object()
_Running = tuple[asyncio.AbstractEventLoop, "asyncio.Queue[Any]", "asyncio.Task[Any]"]


def _import_httpx() -> ModuleType:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError(
            "RemoteMonitor needs the `httpx` package, which is in aiofit's `http` extra: "
            'pip install "aiofit[http]"'
        ) from exc
    return httpx


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a logs value: numpy scalars become Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else value.tolist()
    return value


def epoch_payload(epoch: int, logs: Logs | None) -> dict[str, Any]:
    """What RemoteMonitor sends for one epoch: ``{"epoch": epoch, **logs}``, as Keras does."""
    send: dict[str, Any] = {"epoch": epoch}
    for key, value in (logs or {}).items():
        send[key] = _plain(value)
    return send


class _Sender:
    """A thread with its own event loop that posts queued payloads in order."""

    def __init__(self, httpx: ModuleType, url: str, headers: dict[str, str], timeout: float):
        self._url, self._timeout = url, timeout
        # Built here so bad settings raise in the caller, not in the thread.
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._pending: list[int] = []  # epochs handed over and not yet settled
        self._failures: list[str] = []
        self._running: _Running | None = None  # set by the thread once its loop runs
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        """Starts the thread; blocks until its loop takes payloads (so run it in a thread)."""
        self._thread.start()
        self._ready.wait()
        if self._running is None:
            raise RuntimeError("RemoteMonitor could not start its sender thread")

    def _call(self, fn: Any, *args: Any) -> bool:
        """Schedules ``fn(*args)`` on the sender's loop; False if that loop is gone."""
        if self._running is None:
            return False
        try:
            self._running[0].call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the thread has ended
            return False
        return True

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def submit(self, epoch: int, request: dict[str, Any]) -> None:
        """Queues one post; never blocks."""
        assert self._running is not None  # start() raised otherwise
        with self._lock:
            self._pending.append(epoch)
        if not self._call(self._running[1].put_nowait, (epoch, request)):
            self._settle(epoch, f"RemoteMonitor could not send epoch {epoch}: its sender stopped")

    def take_failures(self) -> list[str]:
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    async def aclose(self) -> list[int]:
        """Flushes within ``timeout``, then cancels what is left; returns the epochs not sent."""
        assert self._running is not None  # start() raised otherwise
        _, queue, task = self._running
        self._call(queue.put_nowait, _STOP)
        await anyio.to_thread.run_sync(self._thread.join, self._timeout)
        if self._thread.is_alive():
            self._call(task.cancel)
            # Cancelling the loop's only task is quick; the bound guards a stuck resolver.
            await anyio.to_thread.run_sync(self._thread.join, self._timeout)
        with self._lock:
            unsent, self._pending = self._pending, []
        return unsent

    def _settle(self, epoch: int, failure: str | None) -> None:
        with self._lock:
            self._pending.remove(epoch)
            if failure is not None:
                self._failures.append(failure)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except asyncio.CancelledError:
            pass  # aclose gave up waiting: what was left is reported as unsent
        finally:
            self._ready.set()  # never leave start() waiting, even if the loop failed

    async def _serve(self) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.current_task()
        assert task is not None  # we are inside asyncio.run
        self._running = (asyncio.get_running_loop(), queue, task)
        self._ready.set()
        async with self._client as client:
            while (item := await queue.get()) is not _STOP:
                epoch, request = item
                self._settle(epoch, await self._post(client, epoch, request))

    async def _post(self, client: Any, epoch: int, request: dict[str, Any]) -> str | None:
        """Posts one payload; returns a failure message, or None when the server took it."""
        try:
            # httpx bounds each phase separately; this bounds the whole request.
            async with asyncio.timeout(self._timeout):
                response = await client.post(self._url, **request)
        except Exception as exc:  # whatever goes wrong is a warning, never a training error
            reason = "no answer in time" if isinstance(exc, TimeoutError) else repr(exc)
            return (
                f"Could not reach RemoteMonitor root server at {self._url} "
                f"(logs of epoch {epoch}): {reason}"
            )
        if response.is_error:
            return (
                f"RemoteMonitor server at {self._url} answered HTTP {response.status_code} "
                f"to the logs of epoch {epoch}"
            )
        return None


class RemoteMonitor(Callback):
    """Streams each epoch's logs to a server with HTTP POST, as Keras 3's RemoteMonitor.

    At each epoch end it posts ``{"epoch": epoch, **logs}`` (numpy values made
    plain numbers) to ``root + path``: form-encoded as ``{field: json.dumps(...)}``,
    or as a JSON body when ``send_as_json`` is set. Posting never stalls
    training: payloads go to a background sender (one connection, in epoch
    order) and the hook returns at once. A server that is down, slow or
    answers an HTTP error is reported with ``warnings.warn`` (a ``UserWarning``,
    issued from the next hook), never raised. While more than ``max_pending``
    posts are outstanding, further epochs are dropped with a warning rather
    than queued without bound. ``on_train_end`` (which ``fit`` calls however it
    ends) waits at most ``timeout`` seconds for outstanding posts, gives up on
    the rest with a warning and stops the sender.

    Needs ``httpx``: ``pip install "aiofit[http]"``.

    Args:
        root: Root URL of the server.
        path: Path appended to ``root`` (plain concatenation, as Keras does).
        field: Form field holding the JSON-encoded logs (form mode only).
        headers: Extra HTTP headers sent with every post.
        send_as_json: Send the logs as the ``application/json`` body instead of a form.
        timeout: Seconds allowed for each post, and for the flush at train end.
        max_pending: Posts allowed to be outstanding before epochs are dropped.

    Raises:
        ImportError: at construction, if ``httpx`` is not installed.

    Example:
        ``await model.fit(x, y, callbacks=[RemoteMonitor(root="http://127.0.0.1:9000")])``
    """

    def __init__(
        self,
        root: str = "http://localhost:9000",
        path: str = "/publish/epoch/end/",
        field: str = "data",
        headers: Mapping[str, str] | None = None,
        send_as_json: bool = False,
        timeout: float = 10.0,
        max_pending: int = 8,
    ) -> None:
        super().__init__()
        self._httpx = _import_httpx()
        for name, value in (("root", root), ("path", path), ("field", field)):
            if not isinstance(value, str):
                raise TypeError(f"`{name}` must be a string. Received: {name}={value!r}")
        self.root, self.path, self.field = root, path, field
        _check_url(self._httpx, root, path)
        self.headers = _checked_headers(headers)
        self.send_as_json = bool(send_as_json)
        self.timeout = _checked_timeout(timeout)
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(
                f"`max_pending` must be a positive integer. Received: max_pending={max_pending!r}"
            )
        self.max_pending = max_pending
        self._sender: _Sender | None = None

    @property
    def url(self) -> str:
        """Where the logs are posted: ``root + path``."""
        return self.root + self.path

    async def on_train_begin(self, logs: Logs | None = None) -> None:
        """Starts a fresh sender (closing one a previous run left open)."""
        await self._close()
        await self._open()

    async def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Hands this epoch's logs to the sender and returns without waiting for the server."""
        if self._sender is None:  # driven by hand without on_train_begin
            await self._open()
        assert self._sender is not None
        self._warn_failures()
        if self._sender.pending() >= self.max_pending:
            warnings.warn(
                f"RemoteMonitor dropped the logs of epoch {epoch}: {self.max_pending} posts "
                f"to {self.url} are still waiting for the server.",
                stacklevel=2,
            )
            return
        self._sender.submit(epoch, self._request(epoch_payload(epoch, logs)))

    async def on_train_end(self, logs: Logs | None = None) -> None:
        """Flushes outstanding posts within ``timeout`` and stops the sender."""
        await self._close()

    def _request(self, send: dict[str, Any]) -> dict[str, Any]:
        # Serialised now: the logs dict is shared, and may change once this hook returns.
        body = json.dumps(send, default=str)
        if self.send_as_json:
            return {"content": body, "headers": {"Content-Type": "application/json"}}
        return {"data": {self.field: body}}

    async def _open(self) -> None:
        sender = _Sender(self._httpx, self.url, self.headers, self.timeout)
        await anyio.to_thread.run_sync(sender.start)
        self._sender = sender

    async def _close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is None:
            return
        unsent = await sender.aclose()
        self._warn_failures(sender)
        if unsent:
            warnings.warn(
                f"Could not reach RemoteMonitor root server at {self.root}: gave up on "
                f"epochs {unsent} after waiting {self.timeout} s at the end of training.",
                stacklevel=3,
            )

    def _warn_failures(self, sender: _Sender | None = None) -> None:
        sender = sender or self._sender
        if sender is None:
            return
        for failure in sender.take_failures():
            warnings.warn(failure, stacklevel=3)


def _check_url(httpx: ModuleType, root: str, path: str) -> None:
    try:
        url = httpx.URL(root + path)
    except httpx.InvalidURL as exc:
        raise ValueError(
            f"`root + path` is not a valid URL ({exc}). Received: root={root!r}"
        ) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            "`root` must be an http(s) URL such as 'http://localhost:9000'. "
            f"Received: root={root!r}"
        )


def _checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise TypeError(
            f"`headers` must be a dict of strings to strings. Received: headers={headers!r}"
        )
    return dict(headers)


def _checked_timeout(timeout: float) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(
            f"`timeout` must be a positive number of seconds. Received: timeout={timeout!r}"
        )
    return float(timeout)
