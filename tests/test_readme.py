"""The README's snippets and commands run as printed, and say what really happens."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import aiofit
from aiofit import layers

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _block_after(heading: str, lang: str = "python", nth: int = 0) -> str:
    """The ``nth`` fenced ``lang`` block after ``heading``."""
    start = README.index(heading)
    for _ in range(nth + 1):
        start = README.index(f"```{lang}\n", start) + len(f"```{lang}\n")
    return README[start : README.index("```", start)]


def _run_script(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "snippet.py"
    script.write_text(source)
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        check=False, cwd=tmp_path,
    )


def test_quick_start_runs(tmp_path: Path) -> None:
    result = _run_script(tmp_path, _block_after("## Quick start"))
    assert result.returncode == 0, result.stderr
    assert "{'loss': " in result.stdout


def test_sync_api_and_tcp_snippets_run_after_the_quick_start(tmp_path: Path) -> None:
    tcp = _block_after("**TCP** (base install)")
    source = (
        _block_after("## Quick start")
        + _block_after("## Quick start", nth=1)
        + "print('reloaded', np.array_equal(same.predict_on_batch(x[:8]),"
        " model.predict_on_batch(x[:8])))\n"
        + "async def tcp():\n    before = model.get_weights()\n" + textwrap.indent(tcp, "    ")
        + "    print('tcp trained', not np.array_equal(before[0], model.get_weights()[0]))\n"
        + "aiofit.run(tcp())\n"
    )
    result = _run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    assert "reloaded True" in result.stdout
    assert "tcp trained True" in result.stdout
    assert (tmp_path / "digits.aiofit").is_file()


def test_the_data_error_example_is_the_real_message() -> None:
    match = re.search(r"`(batch \d+ of epoch \d+:[^`]*)`", README)
    assert match, "the README shows no DataError example"
    documented = " ".join(match.group(1).split())
    x = np.random.default_rng(0).normal(size=(96, 20)).astype("float32")
    y = np.zeros(96, dtype=int)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(3):  # the third batch (index 2) has 19 features
            rows = x[32 * i : 32 * (i + 1)]
            yield (rows[:, :19] if i == 2 else rows), y[32 * i : 32 * (i + 1)]

    model = aiofit.Sequential([layers.Input(shape=(20,)), layers.Dense(3)], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(aiofit.DataError) as caught:
        aiofit.run(model.fit(batches(), epochs=1, verbose=0))
    assert str(caught.value) == documented


def _cli_line(prefix: str) -> list[str]:
    block = _block_after("## The demo", lang="bash")
    line = next(ln for ln in block.splitlines() if ln.startswith(prefix))
    return shlex.split(line, comments=True)[3:]  # drop "python -m aiofit"


@pytest.mark.slow
def test_the_serve_and_train_tcp_lines_run_as_printed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 20)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(np.abs(x[:, 0]) * 3).astype(int).clip(0, 9))
    serve = ["0" if arg == "5000" else arg for arg in _cli_line("python -m aiofit serve")]
    child = subprocess.Popen(
        [sys.executable, "-m", "aiofit", *serve], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        banner = child.stdout.readline() + child.stdout.readline()
        port = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner)
        assert port, banner
        train = [a.replace(":5000", f":{port.group(1)}")
                 for a in _cli_line("python -m aiofit train --tcp")]
        result = subprocess.run(
            [sys.executable, "-m", "aiofit", *train, "--out", str(tmp_path / "out"),
             "--verbose", "2"],
            capture_output=True, text=True, timeout=90, check=False, cwd=tmp_path,
        )
    finally:
        child.kill()
        child.communicate()
    assert result.returncode == 0, result.stderr
    epochs = train[train.index("--epochs") + 1]
    assert f"trained {epochs} epoch(s)" in result.stdout
    assert (tmp_path / "out" / "model.aiofit").is_file()


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    opening = README.index("```bash")
    first_block = README[opening : README.index("```", opening + 7)]
    commands = [line for line in first_block.splitlines() if line.startswith("python3")]
    assert len(commands) == 2
    assert commands[0].endswith("-m aiofit")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == commands[1]
