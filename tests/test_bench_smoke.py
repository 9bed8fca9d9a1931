"""The benchmarks still run: each module's cheapest case at tiny sizes.

No timing is asserted (the figures mean nothing at these sizes); what is checked
is that every benchmark runs, returns well-formed rows, and that the runner
prints them and writes its JSON.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import __main__ as runner
from bench._report import ROW_KEYS, format_table, median_spread

ROOT = Path(__file__).resolve().parents[1]


def _check_rows(name: str, rows: list[dict[str, Any]]) -> None:
    assert rows, f"{name} returned no rows"
    for row in rows:
        assert tuple(row) == ROW_KEYS
        assert row["case"] != "crashed", row["measured"]
        assert row["measured"]
        assert row["target"]
        assert row["passed"] in (True, False, None)
        assert (row["passed"] is None) == (row["target"].startswith("-"))
        assert row["median"] is None or math.isfinite(row["median"])
        json.dumps(row)  # what --json writes


@pytest.mark.parametrize("name", runner.BENCHMARKS)
def test_each_benchmark_runs_and_returns_rows(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    rows = module.run("smoke")
    _check_rows(name, rows)


def test_memory_pipeline_never_exceeds_its_bound() -> None:
    from bench import memory

    figures = memory.measure("smoke")
    # The smoke epochs are 3 batches long and nothing is read past an epoch.
    assert 1 <= figures["max_ahead"] <= min(3, figures["bound"])
    assert len(figures["rss"]) == figures["epochs"]


def test_runner_prints_one_table_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []

    def fake_run(level: str) -> list[dict[str, Any]]:
        calls.append(level)
        raise RuntimeError("boom")

    from bench import memory, overlap
    from bench._report import make_row

    monkeypatch.setattr(overlap, "run", fake_run)
    monkeypatch.setattr(memory, "run", lambda level: [make_row("memory", level, "1 MB")])
    out = tmp_path / "bench.json"
    status = runner.main(["--quick", "--only", "overlap", "memory", "--json", str(out)])
    printed = capsys.readouterr().out
    assert calls == ["quick"]
    assert status == 1  # a crashed benchmark fails the run, and the others still ran
    assert printed.count("| benchmark | case |") == 1
    assert "| memory | quick | 1 MB | - | - |" in printed
    assert "RuntimeError: boom" in printed
    report = json.loads(out.read_text())
    assert report["level"] == "quick"
    assert {"cpu", "cores", "blas", "python", "event_loops"} <= set(report["machine"])
    assert [r["benchmark"] for r in report["rows"]][0] == "overlap"


def test_median_spread_by_hand() -> None:
    assert median_spread([1.0, 2.0, 3.0]) == (2.0, 0.5)
    median, spread = median_spread([1.0, 2.0, 3.0, 4.0, 5.0])
    assert median == 3.0
    assert spread == pytest.approx((4.5 - 1.5) / 2 / 3)  # exclusive quartiles: 1.5 and 4.5


def test_table_escapes_pipes() -> None:
    from bench._report import make_row

    table = format_table([make_row("b", "a|b", "1x")])
    assert table.splitlines()[-1] == "| b | a\\|b | 1x | - | - |"


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_handwritten_reference_step_computes_aiofits_step(opt: str) -> None:
    """The nn_step bench's hand-written reference trains the same model the same way."""
    import numpy as np

    import aiofit
    from aiofit import layers, optimizers
    from bench._handwritten_mlp import handwritten_step

    model = aiofit.Sequential(
        [layers.Input(shape=(20,)), layers.Dense(16, activation="relu"),
         layers.Dense(8, activation="relu"), layers.Dense(5, activation="softmax")],
        seed=3,
    )  # fmt: skip
    optimizer = optimizers.SGD(0.01, momentum=0.9) if opt == "sgd" else optimizers.Adam()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 20)).astype(np.float32)
    y = rng.integers(0, 5, 12)
    model.build((None, 20))
    initial = model.get_weights()
    step, weights = handwritten_step(initial, x, y, opt)
    for _ in range(3):
        expected_loss = model.train_on_batch(x, y)["loss"]
        assert step() == pytest.approx(expected_loss, rel=1e-5)
    for ours, reference in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_allclose(reference, ours, rtol=1e-4, atol=1e-6)
    for before, after in zip(initial, weights, strict=True):  # it did train every weight
        assert np.abs(after - before).max() > 1e-4


def test_floor_row_counts_the_rounds_within_the_target_by_hand() -> None:
    from bench._timing import Timing
    from bench.nn_step import _floor_row

    floor = Timing([2.0, 1.0, 4.0])
    ours = Timing([2.4, 1.3, 5.0])  # per round: 1.20, 1.30, 1.25 -> median 1.25; 2 within
    by_hand = Timing([2.6, 1.1, 4.4])  # 1.30, 1.10, 1.10 -> median 1.10; 2 within
    row = _floor_row("adam", 512, {"aiofit": ours, "matmul_floor": floor, "handwritten": by_hand})
    assert row["median"] == pytest.approx(1.25)
    assert row["passed"] is True  # the bound is inclusive
    details = row["details"]
    assert (details["rounds_within"], details["handwritten_rounds_within"]) == (2, 2)
    assert details["rounds"] == 3
    assert details["handwritten_x_floor"] == pytest.approx(1.1)
    assert "<= 1.25x in 2/3 rounds" in row["measured"]
