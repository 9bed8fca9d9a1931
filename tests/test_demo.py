"""``python -m aiofit`` works as a new user would run it: offline, end to end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import aiofit
from aiofit import datasets


def test_demo_runs_end_to_end_and_reaches_95_percent(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiofit", "demo", "--out", str(tmp_path), "--verbose", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Epoch 15/15" in result.stdout
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", result.stdout).group(1))
    assert accuracy >= 0.95
    saved = tmp_path / "digits-mlp.aiofit"
    assert f"model saved to {saved}" in result.stdout
    # the saved model is the trained one: it reproduces the printed accuracy
    x, y = datasets.load_digits()
    _, x_test, _, y_test = datasets.split(x, y, 0.2, seed=0)
    model = aiofit.load_model(saved)
    predicted = model.predict_on_batch(x_test).argmax(axis=1)
    assert abs(np.mean(predicted == y_test) - accuracy) < 5e-5  # printed with 4 decimals



def test_help_lists_the_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiofit", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout
    assert "bench" in result.stdout
