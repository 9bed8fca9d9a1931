"""``python -m aiofit serve`` and ``train`` as a user runs them: real processes, loopback TCP."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import aiofit
from aiofit import datasets
from aiofit.cli._model_spec import ModelSpec

from ._cli_process import start_aiofit, stop

pytestmark = pytest.mark.slow


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiofit", *args], capture_output=True,
                          text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The digits as train/validation .npz files and a train .csv with a 'digit' column."""
    folder = tmp_path_factory.mktemp("digits")
    x, y = datasets.load_digits()
    x_train, x_val, y_train, y_val = datasets.split(x, y, 0.2, seed=0)
    paths = {"train": folder / "train.npz", "val": folder / "val.npz", "csv": folder / "t.csv"}
    np.savez(paths["train"], x=x_train, y=y_train)
    np.savez(paths["val"], x=x_val, y=y_val)
    header = ",".join([f"p{i}" for i in range(64)] + ["digit"])
    rows = np.column_stack([x_train, y_train])
    np.savetxt(paths["csv"], rows, delimiter=",", header=header, comments="", fmt="%.8g")
    return paths


@pytest.fixture
def server(digits: dict[str, Path]) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``serve`` of the train split, one unshuffled pass per connection; yields its port."""
    child = start_aiofit("serve", str(digits["train"]), "--port", "0", "--batch-size", "32")
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline(), child.stdout.readline()]
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", lines[1])
        assert match, (lines, child.stderr.read() if child.poll() is not None else "")  # type: ignore[union-attr]
        yield int(match.group(1)), child
    finally:
        stop(child)


def _val_accuracy(stdout: str) -> float:
    return float(re.search(r"trained \d+ epoch\(s\): .*val_accuracy: ([0-9.]+)", stdout).group(1))


def _accuracy_of(model_path: Path, data: Path) -> float:
    with np.load(data) as arrays:
        x, y = arrays["x"], arrays["y"]
    return float(np.mean(aiofit.load_model(model_path).predict_on_batch(x).argmax(axis=1) == y))


def test_train_over_tcp_equals_training_from_the_same_batches_in_memory(
    server: tuple[int, subprocess.Popen[str]], digits: dict[str, Path], tmp_path: Path
) -> None:
    port, _ = server
    result = _run("train", "--tcp", f"127.0.0.1:{port}", "--outputs", "10",
                  "--epochs", "8", "--validation-data", str(digits["val"]), "--verbose", "2",
                  "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    accuracy = _val_accuracy(result.stdout)
    assert accuracy >= 0.9  # 8 epochs of a 64-64-10 MLP on the digits
    saved = tmp_path / "model.aiofit"
    assert abs(_accuracy_of(saved, digits["val"]) - accuracy) < 5e-5
    # one pass per connection, one connection per epoch, batches in file order:
    # exactly what fit makes of the arrays with shuffle=False
    model = ModelSpec(outputs=10).build()
    with np.load(digits["train"]) as arrays:
        aiofit.run(model.fit(arrays["x"], arrays["y"], batch_size=32, epochs=8,
                             shuffle=False, verbose=0))
    for got, want in zip(aiofit.load_model(saved).get_weights(), model.get_weights(),
                         strict=True):
        np.testing.assert_array_equal(got, want)


def test_train_with_steps_per_epoch_reads_one_live_stream(
    digits: dict[str, Path], tmp_path: Path
) -> None:
    child = start_aiofit("serve", str(digits["train"]), "--forever", "--shuffle", "--seed", "1")
    try:
        port = int(re.search(r":(\d+) ", child.stdout.readline() + child.stdout.readline())  # type: ignore[union-attr]
                   .group(1))
        result = _run("train", "--tcp", f"127.0.0.1:{port}", "--outputs", "10",
                      "--steps-per-epoch", "45", "--epochs", "6", "--verbose", "2",
                      "--validation-data", str(digits["val"]), "--out", str(tmp_path))
        assert child.poll() is None  # the client leaving does not stop the server
    finally:
        stop(child)
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^45/45 ", result.stdout, flags=re.MULTILINE)) == 6
    assert _val_accuracy(result.stdout) >= 0.9


def test_train_from_an_npz_file(digits: dict[str, Path], tmp_path: Path) -> None:
    result = _run("train", "--data", str(digits["train"]), "--validation-data",
                  str(digits["val"]), "--epochs", "5", "--verbose", "0", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "trained 5 epoch(s)" in result.stdout
    accuracy = _val_accuracy(result.stdout)
    assert accuracy >= 0.9
    assert abs(_accuracy_of(tmp_path / "model.aiofit", digits["val"]) - accuracy) < 5e-5


def test_train_from_a_csv_file_with_a_named_label_column(
    digits: dict[str, Path], tmp_path: Path
) -> None:
    result = _run("train", "--data", str(digits["csv"]), "--label-column", "digit",
                  "--validation-data", str(digits["val"]), "--epochs", "5", "--verbose", "0",
                  "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert _val_accuracy(result.stdout) >= 0.9


def test_train_from_a_toml_config_with_flags_overriding_it(
    digits: dict[str, Path], tmp_path: Path
) -> None:
    config = tmp_path / "model.toml"
    config.write_text('layers = [16, 8]\nactivation = "tanh"\noptimizer = "sgd"\n'
                      "learning_rate = 0.5\nepochs = 9\nbatch_size = 64\n")
    result = _run("train", "--config", str(config), "--epochs", "2", "--data",
                  str(digits["train"]), "--verbose", "0", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "trained 2 epoch(s)" in result.stdout  # the flag wins over epochs = 9
    model = aiofit.load_model(tmp_path / "model.aiofit")
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(64, 16), (16,), (16, 8), (8,), (8, 10), (10,)]  # 10 classes inferred
    assert model.optimizer.learning_rate == pytest.approx(0.5)
    assert type(model.optimizer).__name__ == "SGD"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["train", "--tcp", "127.0.0.1:{closed}", "--outputs", "3"], 1,
         r"cannot connect to 127\.0\.0\.1:\d+"),
        (["train", "--tcp", "127.0.0.1:{closed}"], 2, r"pass --outputs"),
        (["train", "--tcp", "localhost"], 2, r"--tcp expects HOST:PORT.*Received: 'localhost'"),
        (["train", "--data", "{missing}"], 2, r"--data: no such file"),
        (["train", "--data", "{train}", "--layers", "a,b"], 2, r"bad value for 'layers'"),
        (["train", "--data", "{train}", "--tcp", "1.2.3.4:5"], 2, r"exactly one source"),
        (["train", "--data", "{train}", "--epochs", "x"], 2, r"invalid int value: 'x'"),
        (["train", "--data", "{train}", "--config", "{missing}"], 2, r"--config: no such file"),
        (["train", "--data", "{noy}"], 1, r"must hold arrays named 'x' and 'y'"),
        (["train", "--http", "http://127.0.0.1:{closed}/rows", "--outputs", "3",
          "--x-field", "f", "--y-field", "y"], 1, r"ConnectError.*url='http://127"),
        (["serve", "{missing}"], 2, r"data: no such file"),
        (["serve", "{train}", "--port", "70000"], 2, r"--port must be in 0\.\.65535"),
        (["serve", "{noy}"], 1, r"must hold arrays named 'x' and 'y'"),
        (["demo", "--epochs", "0"], 2, r"--epochs is too small"),
        (["frobnicate"], 2, r"invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_clear_line_and_an_exit_code(
    args: list[str], code: int, message: str, digits: dict[str, Path], tmp_path: Path
) -> None:
    noy = tmp_path / "noy.npz"
    np.savez(noy, x=np.zeros((4, 2)))
    values = {"closed": _closed_port(), "missing": tmp_path / "missing.npz",
              "train": digits["train"], "noy": noy}
    filled = [a.format(**values) for a in args]
    extra = ["--out", str(tmp_path / "out")] if filled[0] == "train" else []
    result = _run(*filled, *extra)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(message, lines[0]), lines[0]


def test_redis_source_names_the_missing_flags(tmp_path: Path) -> None:
    result = _run("train", "--redis", "redis://127.0.0.1:1", "--outputs", "3",
                  "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--redis needs --stream, --group, --consumer" in result.stderr


def test_serve_stops_on_ctrl_c_with_one_line(digits: dict[str, Path]) -> None:
    child = start_aiofit("serve", str(digits["train"]))
    try:
        assert "listening on" in child.stdout.readline() + child.stdout.readline()  # type: ignore[union-attr]
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        stop(child)
    assert child.returncode == 130
    assert err.strip().splitlines() == ["interrupted: serve stopped cleanly"]


def test_bench_passes_its_options_through(tmp_path: Path) -> None:
    """``python -m aiofit bench --quick ...`` reaches the runner with every option."""
    report = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "aiofit", "bench", "--quick", "--only", "memory",
         "--json", str(report)],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(report.read_text())["rows"]
    assert {row["benchmark"] for row in rows} == {"memory"}


def test_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _run("train", "--redis", f"redis://127.0.0.1:{port}/0", "--stream", "s",
                  "--group", "g", "--consumer", "c", "--outputs", "3", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Connection refused" in lines[0]
