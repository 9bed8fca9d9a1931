"""Bit-identical weights on asyncio, uvloop and trio, and against a manual batch loop."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from typing import Any

import anyio
import numpy as np
import pytest

import aiofit
from aiofit import layers
from aiofit.engine import evaluate, fit, predict, run

from .conftest import engine_threads

BACKENDS: list[tuple[str, dict[str, Any]]] = [("asyncio", {}), ("trio", {})]
if importlib.util.find_spec("uvloop") is not None:
    BACKENDS.insert(1, ("asyncio", {"use_uvloop": True}))


def make_model() -> aiofit.Sequential:
    model = aiofit.Sequential(
        [
            layers.Input(shape=(6,)),
            layers.Dense(16, activation="relu"),
            layers.Dropout(0.25),  # draws from the model's rng at every step
            layers.Dense(3, activation="softmax"),
        ],
        seed=3,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_xy(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, y


@pytest.mark.anyio
async def test_fit_matches_a_manual_train_on_batch_loop_bit_for_bit() -> None:
    x, y = make_xy()
    model, ref = make_model(), make_model()
    history = await fit(
        model, x, y, batch_size=20, epochs=3, verbose=0, shuffle=False,
        validation_data=(x[:30], y[:30]),
    )  # fmt: skip
    ref_losses = []
    for _ in range(3):
        rows = []
        for i in range(0, len(x), 20):
            logs = ref.train_on_batch(x[i : i + 20], y[i : i + 20])
            rows.append((len(x[i : i + 20]), logs["loss"]))
        ref_losses.append(sum(n * v for n, v in rows) / len(x))
        ref.test_on_batch(x[:30], y[:30])
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert history.history["loss"] == pytest.approx(ref_losses, rel=1e-12)
    assert engine_threads() == []


@pytest.mark.anyio
async def test_evaluate_and_predict_match_the_batch_api() -> None:
    x, y = make_xy()
    model = make_model()
    model.train_on_batch(x[:10], y[:10])
    got = await evaluate(model, x, y, batch_size=32, verbose=0)
    rows = [(len(x[i : i + 32]), model.test_on_batch(x[i : i + 32], y[i : i + 32])) for i in
            range(0, len(x), 32)]  # fmt: skip
    want = {k: sum(n * logs[k] for n, logs in rows) / len(x) for k in rows[0][1]}
    assert got == pytest.approx(want, rel=1e-12)
    out = await predict(model, x, batch_size=32, verbose=0)
    np.testing.assert_array_equal(out, model.predict_on_batch(x))


def _fit_weights(backend: str, options: dict[str, Any]) -> list[np.ndarray]:
    x, y = make_xy()
    model = make_model()

    async def main() -> None:
        await model.fit(
            x, y, batch_size=16, epochs=3, verbose=0, shuffle=True,
            validation_data=(x[:32], y[:32]),
        )  # fmt: skip

    anyio.run(main, backend=backend, backend_options=options)
    return model.get_weights()


def test_same_run_gives_bit_identical_weights_on_every_backend() -> None:
    """Shuffling and dropout both draw from the model's seeded rng, on any loop."""
    runs = [_fit_weights(backend, options) for backend, options in BACKENDS]
    assert len(runs) >= 2
    for other in runs[1:]:
        for got, want in zip(other, runs[0], strict=True):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(runs[0][0], make_model().get_weights()[0])  # it trained


def test_run_drives_a_fit_coroutine_to_completion() -> None:
    x, y = make_xy()
    model = make_model()
    history = run(model.fit(x, y, epochs=2, verbose=0))
    assert history.epoch == [0, 1]
    assert aiofit.run is run


def test_run_rejects_what_is_not_a_coroutine() -> None:
    with pytest.raises(TypeError, match="Received"):
        run(make_model)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_compute_worker_runs_jobs_in_order_on_its_own_thread() -> None:
    import threading

    from aiofit.engine.worker_thread import WorkerThread

    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        if i == 3:
            raise LookupError(i)
        return i * i

    async with WorkerThread("aiofit-compute") as worker:
        jobs = [worker.submit(job, i) for i in range(6)]
        assert await worker.wait(jobs[5]) == 25  # later jobs can be awaited first
        assert [await worker.wait(j) for j in jobs[:3]] == [0, 1, 4]
        with pytest.raises(LookupError):
            await worker.wait(jobs[3])
        assert await worker.run(job, 7) == 49
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4, 5, 7]
    assert {name for _, name in seen} == {"aiofit-compute"}
    assert engine_threads() == []
    with pytest.raises(RuntimeError, match="not running"):
        worker.submit(job, 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
@pytest.mark.anyio
async def test_worker_thread_runs_below_the_event_loops_priority() -> None:
    # The loop's thread must win a busy core back from a step at once (loop lag).
    from aiofit.engine import worker_thread

    ours = thread_nice()
    async with worker_thread.WorkerThread("aiofit-compute") as worker:
        theirs = await worker.run(thread_nice)
    assert worker_thread.NICENESS == 10  # the default, AIOFIT_WORKER_NICENESS unset
    assert theirs == min(19, ours + worker_thread.NICENESS)
    assert thread_nice() == ours  # the event loop's thread keeps its priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
@pytest.mark.anyio
async def test_worker_niceness_zero_keeps_the_creators_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiofit.engine import worker_thread

    monkeypatch.setattr(worker_thread, "NICENESS", 0)
    async with worker_thread.WorkerThread("aiofit-compute") as worker:
        assert await worker.run(thread_nice) == thread_nice()


def thread_nice() -> int:
    """The calling thread's own nice value (Linux keeps one per thread)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_worker_niceness_comes_from_the_environment() -> None:
    from aiofit.engine.worker_thread import niceness_from

    assert niceness_from({}) == 10
    assert niceness_from({"AIOFIT_WORKER_NICENESS": "0"}) == 0
    with pytest.raises(ValueError, match="AIOFIT_WORKER_NICENESS.*Received: 'low'"):
        niceness_from({"AIOFIT_WORKER_NICENESS": "low"})
