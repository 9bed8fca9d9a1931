"""The progress bar, byte for byte against Keras 3's format (keras/src/utils/progbar.py).

Expected strings are written out by hand from Keras's rules; a fake clock makes
the displayed times deterministic.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from aiofit.callbacks import CallbackList, ProgbarLogger
from aiofit.callbacks._progbar import Progbar, format_time, format_value

# Keras's ANSI styling: bold, green, white, reset.
B, G, W, R = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"
BAR = "━"


def plain(text: str) -> str:
    """What a log file or pipe gets: Keras's line without the terminal colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run_three_steps(stream: io.StringIO, dynamic: bool | None = None) -> None:
    clock = Clock()
    progbar = Progbar(3, stream=stream, clock=clock, dynamic_display=dynamic)
    for step, (now, loss) in enumerate([(0.5, 0.9), (2.5, 0.5)], start=1):
        clock.now = now
        progbar.update(step, [("loss", loss)])
    clock.now = 4.6
    progbar.update(3, [("loss", 0.4)], finalize=True)


# Step 1 at t=0.5: 0.5 s/step, ETA 2 x 0.5 s; 6 of 20 cells done. Visible width 53.
LINE_1 = f"{B}1/3{R} {G}{BAR * 6}{R}{W}{BAR * 14}{R} {B}1s{R} 500ms/step - loss: 0.9000"
# Step 2 at t=2.5: (2.5 - 0.5) / 1 s/step (the first step is left out), ETA 2 s,
# loss averaged (0.9 + 0.5) / 2; 13 cells. Visible width 50.
LINE_2 = f"{B}2/3{R} {G}{BAR * 13}{R}{W}{BAR * 7}{R} {B}2s{R} 2s/step - loss: 0.7000"
# Final at t=4.6: elapsed 5 s, (4.6 - 0.5) / 2 s/step, the final value replaces the mean.
LINE_3 = f"{B}3/3{R} {G}{BAR * 20}{R}{W}{R} {B}5s{R} 2s/step - loss: 0.4000"


def test_terminal_redraws_one_line_in_place_with_padding() -> None:
    stream = Terminal()
    _run_three_steps(stream)
    assert stream.getvalue() == (
        "\r" + LINE_1
        + "\b" * 53 + "\r" + LINE_2 + " " * 3
        + "\b" * 50 + "\r" + LINE_3 + "\n"
    )  # fmt: skip


def test_non_terminal_prints_one_line_per_update() -> None:
    stream = io.StringIO()
    _run_three_steps(stream)
    assert stream.getvalue() == plain(LINE_1 + "\n" + LINE_2 + "\n" + LINE_3 + "\n")
    assert "\r" not in stream.getvalue()
    assert "\x1b" not in stream.getvalue()


def test_dynamic_display_can_be_forced() -> None:
    stream = io.StringIO()
    _run_three_steps(stream, dynamic=True)
    assert stream.getvalue().startswith("\r" + LINE_1 + "\b" * 53)


def test_updates_closer_than_the_interval_are_skipped_but_not_the_last() -> None:
    clock, stream = Clock(), io.StringIO()
    progbar = Progbar(4, stream=stream, clock=clock)
    for step, now in enumerate([1.0, 1.02, 1.04], start=1):
        clock.now = now
        progbar.update(step, [("loss", 1.0)])
    clock.now = 1.06
    progbar.update(4, [("loss", 1.0)])  # reaches the target: finalizes
    lines = stream.getvalue().splitlines()
    assert [line[0] for line in lines] == ["1", "4"]


def test_unknown_target_shows_the_count_and_elapsed_time() -> None:
    clock, stream = Clock(), Terminal()
    progbar = Progbar(None, stream=stream, clock=clock)
    clock.now = 1.0
    progbar.update(1, [("loss", 2.0)])
    assert stream.getvalue() == f"\r      1/Unknown {B}1s{R} 1s/step - loss: 2.0000"


@pytest.mark.parametrize(
    ("target", "eta"),
    [(10_000, "2:46:39"), (3602, "1:00:01"), (101, "1:40"), (62, "1:01"), (61, "60s"), (2, "1s")],
)
def test_eta_formats(target: int, eta: str) -> None:
    clock, stream = Clock(), io.StringIO()
    progbar = Progbar(target, stream=stream, clock=clock)
    clock.now = 1.0  # 1 s/step, so the ETA is target - 1 seconds
    progbar.update(1)
    assert f" {eta} 1s/step" in stream.getvalue()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, " 0s/step"),
        (1.0, " 1s/step"),
        (2.6, " 3s/step"),
        (0.999, " 999ms/step"),
        (0.0123, " 12ms/step"),
        (0.001, " 1ms/step"),
        (0.000456, " 456us/step"),
    ],
)
def test_time_per_step_units(seconds: float, text: str) -> None:
    assert format_time(seconds, "step") == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.5000"),
        (123.456789, "123.4568"),
        (0.0011, "0.0011"),
        (0.001, "1.0000e-03"),
        (0.0, "0.0000e+00"),
        (-0.5, "-0.5000"),
        (-0.0001, "-1.0000e-04"),
        (float("nan"), "nan"),
    ],
)
def test_value_format_rule(value: float, text: str) -> None:
    assert format_value(value) == text


def test_verbose_2_prints_one_line_at_the_end_only() -> None:
    clock, stream = Clock(), Terminal()
    progbar = Progbar(10, verbose=2, stream=stream, clock=clock)
    clock.now = 1.0
    progbar.update(5, [("loss", 0.5)])
    assert stream.getvalue() == ""
    clock.now = 3.0
    progbar.update(10, [("loss", 0.25), ("val_loss", 0.0001)])
    assert stream.getvalue() == "10/10 - 3s - 300ms/step - loss: 0.2500 - val_loss: 1.0000e-04\n"


def test_verbose_0_prints_nothing() -> None:
    stream = Terminal()
    progbar = Progbar(2, verbose=0, stream=stream, clock=Clock())
    progbar.update(1, [("loss", 1.0)])
    progbar.update(2, [("loss", 1.0)])
    assert stream.getvalue() == ""


def test_stateful_metrics_are_shown_as_given() -> None:
    clock, stream = Clock(), io.StringIO()
    progbar = Progbar(3, stream=stream, clock=clock, stateful_metrics=["lr"])
    clock.now = 1.0
    progbar.update(1, [("loss", 1.0), ("lr", 0.5)])
    clock.now = 2.0
    progbar.add(1, [("loss", 0.0), ("lr", 0.25)])
    assert stream.getvalue().splitlines()[-1].endswith("loss: 0.5000 - lr: 0.2500")


# ProgbarLogger, driven through a CallbackList as fit/evaluate/predict drive it.


async def _one_epoch_of_fit(callbacks: CallbackList, clock: Clock) -> None:
    await callbacks.on_train_begin()
    await callbacks.on_epoch_begin(0)
    for batch, (now, loss, acc) in enumerate([(1.0, 1.0, 0.5), (1.5, 0.5, 1.0)]):
        await callbacks.on_train_batch_begin(batch, {"batch": batch, "size": 4})
        clock.now = now
        logs = {"batch": batch, "size": 4, "loss": loss, "accuracy": acc}
        await callbacks.on_train_batch_end(batch, logs)
    # Validation inside fit is silent.
    await callbacks.on_test_begin()
    await callbacks.on_test_batch_begin(0, {"batch": 0, "size": 4})
    await callbacks.on_test_batch_end(0, {"batch": 0, "size": 4, "loss": 0.8})
    await callbacks.on_test_end({"loss": 0.8, "accuracy": 0.6})
    clock.now = 1.6
    epoch_logs = {"loss": 0.75, "accuracy": 0.75, "val_loss": 0.8, "val_accuracy": 0.6}
    await callbacks.on_epoch_end(0, epoch_logs)


def _logger(stream: io.StringIO, verbose: Any, steps: int | None = 2) -> tuple[Any, Clock]:
    clock = Clock()
    logger = ProgbarLogger(stream=stream, clock=clock)
    callbacks = CallbackList([logger], epochs=2, steps=steps, verbose=verbose)
    return callbacks, clock


@pytest.mark.anyio
async def test_logger_verbose_1_epoch_bytes() -> None:
    stream = Terminal()
    callbacks, clock = _logger(stream, 1)
    await _one_epoch_of_fit(callbacks, clock)
    metrics = " - loss: 0.7500 - accuracy: 0.7500"
    assert stream.getvalue() == (
        "Epoch 1/2\n"
        f"\r{B}1/2{R} {G}{BAR * 10}{R}{W}{BAR * 10}{R} {B}1s{R} 1s/step"
        " - loss: 1.0000 - accuracy: 0.5000"
        + "\b" * 69
        + f"\r{B}2/2{R} {G}{BAR * 20}{R}{W}{R} {B}0s{R} 500ms/step{metrics}"
        + "\b" * 72
        + f"\r{B}2/2{R} {G}{BAR * 20}{R}{W}{R} {B}2s{R} 600ms/step{metrics}"
        " - val_loss: 0.8000 - val_accuracy: 0.6000\n"
    )
    await callbacks.on_epoch_begin(1)
    assert stream.getvalue().endswith("val_accuracy: 0.6000\nEpoch 2/2\n")


@pytest.mark.anyio
async def test_logger_verbose_2_prints_one_line_per_epoch() -> None:
    stream = Terminal()
    callbacks, clock = _logger(stream, 2)
    await _one_epoch_of_fit(callbacks, clock)
    # No per-batch timing is kept at verbose=2: 1.6 s over 2 steps.
    assert stream.getvalue() == (
        "Epoch 1/2\n"
        "2/2 - 2s - 800ms/step - loss: 0.7500 - accuracy: 0.7500"
        " - val_loss: 0.8000 - val_accuracy: 0.6000\n"
    )


@pytest.mark.anyio
async def test_logger_verbose_0_is_silent() -> None:
    stream = Terminal()
    callbacks, clock = _logger(stream, 0)
    await _one_epoch_of_fit(callbacks, clock)
    assert stream.getvalue() == ""


@pytest.mark.anyio
async def test_logger_unknown_steps_show_unknown_then_the_count() -> None:
    stream = Terminal()
    callbacks, clock = _logger(stream, 1, steps=None)
    await _one_epoch_of_fit(callbacks, clock)
    out = stream.getvalue()
    assert f"\r      1/Unknown {B}1s{R} 1s/step - loss: 1.0000 - accuracy: 0.5000" in out
    assert out.split("\r")[-1].startswith(f"{B}2/2{R} {G}{BAR * 20}{R}")
    # The next epoch's length is not assumed: it is unknown again while it runs.
    await callbacks.on_epoch_begin(1)
    clock.now = 2.0
    await callbacks.on_train_batch_end(0, {"batch": 0, "size": 4, "loss": 1.0})
    assert "      1/Unknown" in stream.getvalue().split("Epoch 2/2\n")[1]


@pytest.mark.anyio
async def test_logger_single_epoch_has_no_epoch_header() -> None:
    stream = io.StringIO()
    logger = ProgbarLogger(stream=stream, clock=Clock())
    callbacks = CallbackList([logger], epochs=1, steps=1, verbose=2)
    await callbacks.on_train_begin()
    await callbacks.on_epoch_begin(0)
    await callbacks.on_train_batch_end(0, {"batch": 0, "size": 1, "loss": 2.0})
    await callbacks.on_epoch_end(0, {"loss": 2.0})
    assert stream.getvalue() == "1/1 - 0s - 0s/step - loss: 2.0000\n"


@pytest.mark.anyio
async def test_logger_evaluate_shows_its_own_bar_even_after_fit() -> None:
    stream = io.StringIO()
    clock = Clock()
    logger = ProgbarLogger(stream=stream, clock=clock)
    fit_callbacks = CallbackList([logger], epochs=1, steps=1, verbose=2)
    await fit_callbacks.on_train_begin()
    await fit_callbacks.on_train_end()
    stream.truncate(0)
    callbacks = CallbackList([logger], epochs=1, steps=2, verbose=1)
    await callbacks.on_test_begin()
    clock.now = 1.0
    await callbacks.on_test_batch_end(0, {"batch": 0, "size": 3, "loss": 0.5})
    clock.now = 2.0
    await callbacks.on_test_batch_end(1, {"batch": 1, "size": 3, "loss": 0.3})
    await callbacks.on_test_end({"loss": 0.4})
    assert stream.getvalue().splitlines()[-1] == f"2/2 {BAR * 20} 2s 1s/step - loss: 0.4000"


@pytest.mark.anyio
async def test_logger_predict_shows_no_values() -> None:
    stream = io.StringIO()
    clock = Clock()
    callbacks = CallbackList(
        [ProgbarLogger(stream=stream, clock=clock)], epochs=1, steps=1, verbose=1
    )
    await callbacks.on_predict_begin()
    clock.now = 0.002
    await callbacks.on_predict_batch_end(0, {"outputs": [1.0, 2.0]})
    await callbacks.on_predict_end()
    assert stream.getvalue() == (
        f"1/1 {BAR * 20} 0s 2ms/step\n"
        f"1/1 {BAR * 20} 0s 2ms/step\n"
    )


@pytest.mark.parametrize(("stream", "verbose"), [(Terminal(), 1), (io.StringIO(), 2)])
def test_auto_verbose_is_1_on_a_terminal_else_2(stream: io.StringIO, verbose: int) -> None:
    logger = ProgbarLogger(stream=stream)
    logger.set_params({"epochs": 1, "steps": 1, "verbose": "auto"})
    assert logger.verbose == verbose


def test_default_stream_is_stdout_at_print_time(capsys: pytest.CaptureFixture[str]) -> None:
    logger = ProgbarLogger(clock=Clock())
    logger.set_params({"epochs": 2, "steps": 1, "verbose": 2})
    logger.on_epoch_begin(0)
    assert capsys.readouterr().out == "Epoch 1/2\n"


def test_rejects_sample_count_mode_and_bad_verbose() -> None:
    with pytest.raises(ValueError, match="Received: count_mode='samples'"):
        ProgbarLogger(count_mode="samples")
    with pytest.raises(ValueError, match="Received: verbose=3"):
        ProgbarLogger().set_params({"epochs": 1, "steps": 1, "verbose": 3})
