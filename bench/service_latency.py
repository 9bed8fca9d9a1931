"""Request latency of ``examples/service.py`` while it trains, vs while it is idle.

The service (Starlette on uvicorn) runs on its own event loop in a background
thread of this process; a client in the main thread sends ``/predict`` requests
(8 digits each) one after another and times each round trip. Each round times
``requests`` of them on the idle service, then as many while a ``fit`` of the
digits model trains (only requests answered before the run ended count), and
checks that the run finished with the weights of a plain ``fit`` without requests.
Target: p99 during training <= 3x the idle p99, no failed request, same weights.

An informative row times one ``/predict`` step by itself, inline on the loop vs
handed to a worker thread, for small and large inputs: the figures behind the
service's ``INLINE_VALUES`` cut-off.

Run: ``python -m bench.service_latency [--quick]``, or ``python -m bench``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import numpy as np

from aiofit import datasets
from bench._models import backends, default_backend
from bench._report import format_table, make_row, median_spread, pick

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "service.py"
TARGET = 3.0
BATCH_SIZE = 16


def load_service() -> ModuleType:
    """``examples/service.py`` as a module (examples/ is not a package)."""
    name = "aiofit_service_example"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@contextmanager
def serving(backend: str) -> Iterator[tuple[str, Any]]:
    """The service on a free port, on ``backend``'s loop in a thread: (base URL, service)."""
    import uvicorn

    app = load_service().create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           timeout_graceful_shutdown=5))  # fmt: skip
    name, options = backends()[backend]
    thread = threading.Thread(
        target=lambda: anyio.run(server.serve, backend=name, backend_options=options),
        name="bench-service", daemon=True)  # fmt: skip
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", app.state.service
    finally:
        server.should_exit = True
        thread.join(30)


def _time_predicts(client: Any, n: int, query: list[list[float]]) -> list[tuple[float, Any]]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.post("/predict", json={"x": query})
        out.append((time.perf_counter() - start, response))
    return out


def _p99(samples: list[float]) -> float:
    return float(np.percentile(samples, 99))


def one_round(client: Any, service: Any, n: int, epochs: int, truth: list[Any]) -> dict[str, Any]:
    """Idle p99, then p99 while training; failures and whether the weights came out right."""
    query = datasets.load_digits()[0][:8].tolist()
    idle = _time_predicts(client, n, query)
    total = epochs * math.ceil(1797 / BATCH_SIZE)
    started = client.post("/train", json={"epochs": epochs, "batch_size": BATCH_SIZE})
    during = _time_predicts(client, n, query)
    while client.get("/status").json()["state"] == "training":
        time.sleep(0.02)
    responses = [r for _, r in idle + during] + [started]
    failed = sum(not r.is_success for r in responses)
    training = [t for t, r in during if r.is_success and r.json()["snapshot"]["step"] < total]
    same = all(np.array_equal(a, b) for a, b in zip(service.model.get_weights(), truth,
                                                    strict=True))  # fmt: skip
    return {
        "idle": _p99([t for t, _ in idle]), "training": _p99(training or [math.nan]),
        "answered_in_training": len(training), "failed": failed, "same_weights": same,
    }  # fmt: skip


def _plain_weights(epochs: int) -> list[Any]:
    model = load_service().digits_model(0)
    x, y = datasets.load_digits()
    anyio.run(lambda: model.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0))
    weights: list[Any] = model.get_weights()
    return weights


def measure(backend: str, requests: int, epochs: int, rounds: int) -> dict[str, Any]:
    """``rounds`` idle/training rounds on ``backend``, as a row."""
    import httpx

    truth = _plain_weights(epochs)
    results = []
    with serving(backend) as (url, service), httpx.Client(base_url=url, timeout=30) as client:
        client.post("/train", json={"epochs": 1})  # warm-up, and weights to predict with
        while client.get("/status").json()["state"] == "training":
            time.sleep(0.02)
        for _ in range(rounds):
            results.append(one_round(client, service, requests, epochs, truth))
    ratio, spread = median_spread([r["training"] / r["idle"] for r in results])
    idle = median_spread([r["idle"] for r in results])[0] * 1e3
    busy = median_spread([r["training"] for r in results])[0] * 1e3
    failed = sum(r["failed"] for r in results)
    same = all(r["same_weights"] for r in results)
    answered = min(r["answered_in_training"] for r in results)
    ok = ratio <= TARGET and failed == 0 and same and answered > 0
    return make_row(
        "service latency (p99 during fit / idle)", f"/predict, {backend}",
        f"{ratio:.2f}x (±{spread * 100:.0f}%): p99 {busy:.2f} ms training vs {idle:.2f} ms "
        f"idle; {failed} failed; final weights {'identical' if same else 'DIFFER'}",
        target=f"<= {TARGET:g}x, 0 failed, same weights", passed=ok, median=ratio,
        spread=spread, unit="x idle p99", p99_idle_ms=idle, p99_training_ms=busy,
        failed=failed, same_weights=same, min_answered_in_training=answered,
        requests=requests, epochs=epochs, rounds=rounds,
    )  # fmt: skip


def inline_vs_thread(rows: int, calls: int) -> dict[str, Any]:
    """Informative: one prediction of ``rows`` digits inline vs through ``anyio.to_thread``."""
    model = load_service().digits_model(0)
    x = np.resize(datasets.load_digits()[0], (rows, 64))

    async def timed() -> tuple[float, float]:
        start = time.perf_counter()
        for _ in range(calls):
            model.predict_on_batch(x)
        inline = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(calls):
            await anyio.to_thread.run_sync(model.predict_on_batch, x)
        return inline / calls, (time.perf_counter() - start) / calls

    samples = [anyio.run(timed) for _ in range(3)]
    inline, threaded = (median_spread([s[i] for s in samples])[0] * 1e6 for i in (0, 1))
    return make_row(
        "service latency (predict placement)", f"{rows} rows ({rows * 64} values)",
        f"inline {inline:.0f} us (loop blocked that long) vs to_thread {threaded:.0f} us",
        median=inline / threaded, unit="inline / to_thread", inline_us=inline,
        to_thread_us=threaded,
    )  # fmt: skip


def run(level: str = "full") -> list[dict[str, Any]]:
    """The latency row on each asyncio loop (uvicorn has no trio), plus predict placement."""
    missing = [m for m in ("starlette", "uvicorn", "httpx") if importlib.util.find_spec(m) is None]
    if missing:
        return [make_row("service latency (p99 during fit / idle)", "/predict",
                         f"not run: {', '.join(missing)} not installed "
                         '(pip install "aiofit[service,http]")')]  # fmt: skip
    requests = pick(level, 20, 200, 400)
    epochs = pick(level, 2, 15, 30)
    rounds = pick(level, 1, 3, 5)
    loops: list[str] = [b for b in ("asyncio", "uvloop") if b in backends()]
    if level == "smoke":
        loops = [default_backend()]
    rows = [measure(loop, requests, epochs, rounds) for loop in loops]
    for n in pick(level, (8,), (8, 512, 4096), (8, 512, 4096)):
        rows.append(inline_vs_thread(n, pick(level, 5, 200, 500)))
    return rows


def main() -> None:
    print(format_table(run("quick" if "--quick" in sys.argv else "full")))


if __name__ == "__main__":
    main()
