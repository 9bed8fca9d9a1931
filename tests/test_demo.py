"""``python -m aiofit`` works as a new user would run it: offline, end to end, over TCP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aiofit
from aiofit import datasets

from ._cli_process import start_aiofit, stop

pytestmark = pytest.mark.slow


def _finish(child: subprocess.Popen[str], timeout: float = 90) -> tuple[str, str]:
    try:
        return child.communicate(timeout=timeout)
    finally:
        stop(child)


def _test_split() -> tuple[np.ndarray, np.ndarray]:
    x, y = datasets.load_digits()
    _, x_test, _, y_test = datasets.split(x, y, 0.2, seed=0)
    return x_test, y_test


def test_demo_trains_over_tcp_and_reaches_95_percent(tmp_path: Path) -> None:
    out, err = _finish(start_aiofit("demo", "--out", str(tmp_path), "--verbose", "2"))
    assert "Traceback" not in err, err
    assert "CC BY 4.0" in out  # the data's attribution
    assert re.search(r"serving 1293 training images on 127\.0\.0\.1:\d+", out), out
    epochs = re.findall(r"^Epoch (\d+)/50$", out, flags=re.MULTILINE)
    assert 1 < len(epochs) <= 50
    assert re.search(r"^41/41 .* val_accuracy: 0\.\d+$", out, flags=re.MULTILINE), out
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95
    assert float(re.search(r"throughput: ([0-9,]+) samples/s", out).group(1).replace(",", "")) > 0
    best, last, plot = tmp_path / "digits-mlp.aiofit", tmp_path / "last-epoch.aiofit", \
        tmp_path / "training.png"
    assert f"model saved to {best}" in out
    assert f"training plot saved to {plot}" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the saved model is the trained one: it reproduces the printed accuracy
    x_test, y_test = _test_split()
    predicted = aiofit.load_model(best).predict_on_batch(x_test).argmax(axis=1)
    assert abs(np.mean(predicted == y_test) - accuracy) < 5e-5  # printed with 4 decimals
    assert aiofit.load_model(last).count_params() == aiofit.load_model(best).count_params()


def test_no_arguments_runs_the_demo_into_aiofit_demo(tmp_path: Path) -> None:
    out, err = _finish(start_aiofit("--epochs", "1", "--verbose", "0", cwd=tmp_path))
    assert "Traceback" not in err, err
    assert "test accuracy: 0." in out
    aiofit.load_model(tmp_path / "aiofit-demo" / "digits-mlp.aiofit")


def test_ctrl_c_stops_cleanly_and_leaves_a_usable_checkpoint(tmp_path: Path) -> None:
    # patience and epochs so large that only Ctrl-C can end the run
    child = start_aiofit("demo", "--out", str(tmp_path), "--verbose", "2",
                   "--epochs", "100000", "--patience", "100000")
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("41/41"):  # the first epoch is done
                break
        else:
            pytest.fail(f"no epoch line; stderr: {child.stderr.read()}")  # type: ignore[union-attr]
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        stop(child)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("interrupted: demo stopped cleanly"), err
    assert "test accuracy" not in out
    last = tmp_path / "last-epoch.aiofit"
    if last.exists():  # written atomically after every epoch: never torn
        assert f"last checkpoint: {last}" in lines[0]
        model = aiofit.load_model(last)
        x_test, y_test = _test_split()
        assert np.mean(model.predict_on_batch(x_test).argmax(axis=1) == y_test) > 0.5


def test_help_lists_the_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiofit", "--help"], capture_output=True, text=True,
        check=True, timeout=60,
    )
    for command in ("demo", "serve", "train", "bench"):
        assert re.search(rf"^\s+{command}\s+\S", result.stdout, flags=re.MULTILINE), command
