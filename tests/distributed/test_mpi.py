"""Data parallelism on 2 MPI ranks, each run by ``mpiexec -n 2 python -m mpi4py``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import aiofit

from ._mpi import needs_mpi, run_mpi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scenario import data, fit_kwargs, model  # noqa: E402

pytestmark = [needs_mpi, pytest.mark.slow]
PER_RANK_BATCH = 8


def single_process(optimizer: str, dtype: str) -> tuple[list[np.ndarray], dict[str, list]]:
    """One process, batch 2 * 8, same data, same order: the run 2 ranks must match."""
    net = model(optimizer, dtype)
    x, y, _, _ = data()
    history = aiofit.run(net.fit(x, y, **fit_kwargs(2 * PER_RANK_BATCH)))
    return net.get_weights(), history.history


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_match_one_process_with_the_global_batch(optimizer: str, tmp_path: Path) -> None:
    # 3 shuffled epochs, a last global batch split 5 / 6, validation; ranks start apart.
    results = {}
    for dtype in ("float64", "float32"):
        out = tmp_path / f"{dtype}.npz"
        run_mpi("train.py", optimizer, dtype, str(PER_RANK_BATCH), str(out))
        saved = np.load(out)
        weights = [saved[f"w{i}"] for i in range(4)]
        assert int(saved["ranks"]) == 2
        assert float(saved["spread"]) == 0.0  # both ranks hold the very same weights
        reference, history = single_process(optimizer, dtype)
        for key, values in history.items():
            np.testing.assert_allclose(saved[f"h_{key}"], values, rtol=1e-6, atol=1e-7)
        results[dtype] = (max_diff(weights, reference), reference)
    # float64: the same algorithm, only summation order differs: ~1e-16.
    assert results["float64"][0] < 1e-12
    # float32: no more than float32 rounding moves the single-process run itself
    # (its distance to the float64 run), plus a few ulp of the largest weight.
    rounding = max_diff([w.astype(np.float64) for w in results["float32"][1]],
                        results["float64"][1])  # fmt: skip
    assert results["float32"][0] <= rounding + 8 * np.finfo(np.float32).eps


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_batch() -> None:
    out = run_mpi("behaviours.py", "stop").stdout
    for rank in (0, 1):
        assert f"rank {rank} iterations 3 epochs 1 stop True" in out, out


def test_uneven_streams_end_the_epoch_on_every_rank_with_the_shortest() -> None:
    out = run_mpi("behaviours.py", "uneven").stdout
    for rank in (0, 1):
        assert f"rank {rank} iterations [3, 6] epochs 1" in out, out


def test_only_rank_0_prints_progress() -> None:
    out = run_mpi("behaviours.py", "verbose").stdout
    assert out.count("Epoch 1/2") == 1, out
    assert "rank 1 iterations 26 epochs 2 stop False" in out


def test_an_error_on_one_rank_ends_the_job_and_is_printed_once() -> None:
    result = run_mpi("behaviours.py", "raise", check=False, timeout=60)
    assert result.returncode != 0
    assert result.stderr.count("RuntimeError: boom on rank 1") == 1, result.stderr


def test_a_sigkilled_rank_does_not_leave_the_other_hanging() -> None:
    result = run_mpi("behaviours.py", "sigkill", check=False, timeout=60)
    assert result.returncode != 0


def test_a_collective_that_waits_too_long_raises() -> None:
    result = run_mpi("behaviours.py", "timeout", check=False, timeout=60)
    assert result.returncode != 0
    assert re.search(r"CollectiveTimeoutError: Rank 0 of 2: .* within 1 s", result.stderr)


def test_backup_and_restore_resumes_a_crashed_distributed_run(tmp_path: Path) -> None:
    whole, resumed = tmp_path / "whole.npz", tmp_path / "resumed.npz"
    run_mpi("behaviours.py", "backup", str(tmp_path / "b1"), "0", str(whole))
    crashed = run_mpi("behaviours.py", "backup", str(tmp_path / "b2"), "1", "-", check=False)
    assert crashed.returncode != 0
    assert (tmp_path / "b2" / "backup.npz").exists()
    run_mpi("behaviours.py", "backup", str(tmp_path / "b2"), "0", str(resumed))
    a, b = np.load(whole), np.load(resumed)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    assert not (tmp_path / "b2" / "backup.npz").exists()  # deleted once fit completed
