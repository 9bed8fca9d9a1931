"""fit's epoch structure: steps, epochs, validation, weights, stop_training."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from aiofit import DataError
from aiofit.callbacks import Callback, ProgbarLogger
from aiofit.engine import fit

from .conftest import LinearModel, Recorder, ReIterable, batches_of, make_data

pytestmark = pytest.mark.anyio


async def counting_stream(
    batches: list[tuple[Any, ...]], pulled: list[int], *, repeat: bool = False
) -> AsyncIterator[tuple[Any, ...]]:
    while True:
        for b in batches:
            pulled.append(1)
            yield b
        if not repeat:
            return


def epoch_ends(recorder: Recorder) -> list[tuple[int, dict[str, Any]]]:
    return [(c[1], c[2]) for c in recorder.calls if c[0] == "on_epoch_end"]


async def test_first_batch_loss_is_the_closed_form() -> None:
    x, y = make_data(8)
    recorder = Recorder()
    await fit(LinearModel(), x, y, batch_size=8, verbose=0, shuffle=False, callbacks=[recorder])
    end = next(c for c in recorder.calls if c[0] == "on_train_batch_end")
    # Zero weights predict 0, so the loss before the update is mean(y^2).
    assert end[2]["loss"] == pytest.approx(float(np.mean(y**2)), rel=1e-12)


async def test_weights_match_a_manual_loop_bit_for_bit() -> None:
    x, y = make_data(20)
    model, ref = LinearModel(), LinearModel()
    await fit(model, x, y, batch_size=6, epochs=3, verbose=0, shuffle=False)
    for _ in range(3):
        for bx, by in batches_of(x, y, 6):
            ref.train_on_batch(bx, by)
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


async def test_steps_run_off_the_event_loop_in_one_thread() -> None:
    x, y = make_data(20)
    model = LinearModel()
    await fit(model, x, y, batch_size=2, epochs=2, verbose=0)
    assert len(model.threads) == 1
    (name,) = model.threads
    assert name.startswith("aiofit")


async def test_shuffle_uses_the_model_rng_reproducibly() -> None:
    x, y = make_data(16)
    runs = []
    for _ in range(2):
        model = LinearModel()
        model.rng = np.random.default_rng(7)  # type: ignore[attr-defined]
        await fit(model, x, y, batch_size=4, epochs=2, verbose=0, shuffle=True)
        runs.append(np.concatenate(model.trained()))
    np.testing.assert_array_equal(runs[0], runs[1])
    first_epoch = runs[0][:16]
    assert not np.array_equal(first_epoch, x)  # it did shuffle
    np.testing.assert_array_equal(np.sort(first_epoch, axis=0), np.sort(x, axis=0))


async def test_one_shot_generator_ends_training_with_a_warning() -> None:
    x, y = make_data(8)
    pulled: list[int] = []
    recorder = Recorder()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = await fit(
            LinearModel(), counting_stream(batches_of(x, y, 4), pulled), epochs=3,
            verbose=0, callbacks=[recorder],
        )  # fmt: skip
    # Epoch 2 got no batch: no epoch hooks for it, not in History, no replay.
    assert history.epoch == [0]
    assert [e for e, _ in epoch_ends(recorder)] == [0]
    assert recorder.names().count("on_epoch_begin") == 1
    assert recorder.names()[-1] == "on_train_end"
    assert len(pulled) == 2


async def test_one_shot_generator_for_one_epoch_does_not_warn() -> None:
    x, y = make_data(8)
    history = await fit(LinearModel(), counting_stream(batches_of(x, y, 4), []), verbose=0)
    assert history.epoch == [0]


async def test_re_iterable_source_restarts_each_epoch() -> None:
    x, y = make_data(8)
    model = LinearModel()
    history = await fit(model, ReIterable(batches_of(x, y, 4)), epochs=3, verbose=0)
    assert history.epoch == [0, 1, 2]
    np.testing.assert_array_equal(np.concatenate(model.trained()), np.concatenate([x] * 3))


async def test_steps_per_epoch_continues_the_live_iterator() -> None:
    x, y = make_data(12)
    batches = batches_of(x, y, 2)  # 6 distinct batches
    pulled: list[int] = []
    model = LinearModel()
    stream = counting_stream(batches, pulled, repeat=True)  # infinite
    history = await fit(model, stream, epochs=2, steps_per_epoch=2, verbose=0)
    assert history.epoch == [0, 1]
    # Epoch 2 continues where epoch 1 stopped: batches 0,1 then 2,3.
    np.testing.assert_array_equal(np.concatenate(model.trained()), x[:8])
    assert len(pulled) == 4  # nothing read past the last epoch's batches


async def test_steps_per_epoch_with_one_shot_source_running_out() -> None:
    x, y = make_data(10)
    model = LinearModel()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = await fit(
            model, counting_stream(batches_of(x, y, 2), []), epochs=4, steps_per_epoch=2,
            verbose=0,
        )  # fmt: skip
    # 5 batches: epochs of 2, 2 and a short 1, then the input has run out.
    assert history.epoch == [0, 1, 2]
    assert len(model.trained()) == 5


async def test_initial_epoch_numbers_epochs_from_it() -> None:
    x, y = make_data(8)
    recorder = Recorder()
    history = await fit(
        LinearModel(), x, y, epochs=3, initial_epoch=1, verbose=0, callbacks=[recorder]
    )
    assert history.epoch == [1, 2]
    assert [c[1] for c in recorder.calls if c[0] == "on_epoch_begin"] == [1, 2]
    assert recorder.params_at_begin is not None
    assert recorder.params_at_begin["epochs"] == 3


@pytest.mark.parametrize(("freq", "validated"), [(2, [1, 3]), ([1, 4], [0, 3]), (1, [0, 1, 2, 3])])
async def test_validation_freq(freq: Any, validated: list[int]) -> None:
    x, y = make_data(8)
    recorder = Recorder()
    await fit(
        LinearModel(), x, y, epochs=4, verbose=0, callbacks=[recorder],
        validation_data=(x, y), validation_freq=freq,
    )  # fmt: skip
    got = [e for e, logs in epoch_ends(recorder) if "val_loss" in logs]
    assert got == validated
    assert recorder.names().count("on_test_begin") == len(validated)


async def test_validation_steps_takes_exactly_that_many_batches() -> None:
    x, y = make_data(8)
    vx, vy = make_data(20, seed=3)
    pulled: list[int] = []
    model = LinearModel()
    val = counting_stream(batches_of(vx, vy, 2), pulled, repeat=True)
    await fit(model, x, y, epochs=3, verbose=0, validation_data=val, validation_steps=2)
    tested = [c[1] for c in model.calls if c[0] == "test"]
    # Each validation continues the live stream and reads nothing ahead.
    np.testing.assert_array_equal(np.concatenate(tested), vx[:12])
    assert len(pulled) == 6


async def test_sample_weight_reaches_the_model_and_weights_the_loss() -> None:
    x, y = make_data(6)
    sw = np.array([1.0, 0.0, 2.0, 1.0, 0.5, 3.0])
    model, ref = LinearModel(), LinearModel()
    recorder = Recorder()
    await fit(
        model, x, y, sample_weight=sw, batch_size=4, verbose=0, shuffle=False,
        callbacks=[recorder],
    )  # fmt: skip
    np.testing.assert_array_equal(model.calls[0][3], sw[:4])
    np.testing.assert_array_equal(model.calls[1][3], sw[4:])
    # Keras's rule: sum(w * err^2) / n with zero initial weights (prediction 0).
    first = next(c for c in recorder.calls if c[0] == "on_train_batch_end")
    assert first[2]["loss"] == pytest.approx(float(np.sum(sw[:4] * y[:4] ** 2) / 4), rel=1e-12)
    logs = [ref.train_on_batch(*b) for b in batches_of(x, y, 4, sw)]
    want = (4 * logs[0]["loss"] + 2 * logs[1]["loss"]) / 6
    assert epoch_ends(recorder)[0][1]["loss"] == pytest.approx(want, rel=1e-12)


async def test_class_weight_is_folded_into_sample_weight() -> None:
    x, _ = make_data(6)
    y = np.array([0.0, 1.0, 1.0, 0.0, 2.0, 1.0])
    sw = np.array([1.0, 2.0, 1.0, 1.0, 1.0, 0.5])
    model = LinearModel()
    await fit(
        model, x, y, sample_weight=sw, class_weight={0: 1.0, 1: 3.0, 2: 0.5}, batch_size=6,
        verbose=0, shuffle=False,
    )  # fmt: skip
    np.testing.assert_array_equal(model.calls[0][3], [1.0, 6.0, 3.0, 1.0, 0.5, 1.5])


async def test_stop_training_from_a_callback_stops_after_that_batch() -> None:
    class StopAt(Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 1:
                self.model.stop_training = True

    x, y = make_data(16)
    recorder = Recorder()
    model = LinearModel()
    history = await fit(
        model, x, y, batch_size=4, epochs=5, verbose=0, validation_data=(x, y),
        callbacks=[StopAt(), recorder],
    )  # fmt: skip
    assert len(model.trained()) == 2
    # As in Keras, the epoch still ends: validation and on_epoch_end run.
    assert history.epoch == [0]
    assert "val_loss" in history.history
    assert recorder.names()[-3:] == ["on_test_end", "on_epoch_end", "on_train_end"]


async def test_stop_training_set_in_on_epoch_end_stops_after_the_epoch() -> None:
    class StopAfterFirst(Callback):
        async def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.model.stop_training = True

    x, y = make_data(8)
    history = await fit(LinearModel(), x, y, epochs=4, verbose=0, callbacks=[StopAfterFirst()])
    assert history.epoch == [0]


async def test_fit_resets_stop_training_on_entry() -> None:
    x, y = make_data(8)
    model = LinearModel()
    model.stop_training = True
    history = await fit(model, x, y, epochs=2, verbose=0)
    assert history.epoch == [0, 1]


async def test_on_train_end_gets_the_last_epoch_logs() -> None:
    x, y = make_data(8)
    recorder = Recorder()
    await fit(LinearModel(), x, y, epochs=2, verbose=0, callbacks=[recorder])
    assert recorder.calls[-1] == ("on_train_end", epoch_ends(recorder)[-1][1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": -1}, "epochs"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
        ({"validation_freq": 0}, "validation_freq"),
        ({"validation_freq": "2"}, "validation_freq"),
        ({"verbose": 3}, "verbose"),
        ({"validation_data": (1,)}, "validation_data"),
    ],
)
async def test_bad_arguments_raise_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    x, y = make_data(4)
    with pytest.raises(ValueError, match=match) as info:
        await fit(LinearModel(), x, y, **kwargs)
    assert "Received" in str(info.value)


async def test_verbose_2_prints_one_line_per_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = make_data(8)
    await fit(LinearModel(), x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out
    assert "Epoch 2/2" in out
    assert out.count("loss:") == 2


# -- "ahead" mode: in-memory data and no callback between batches ---------------------


async def test_queued_steps_after_a_model_error_never_run() -> None:
    class Boom(ArithmeticError):
        pass

    def explode(index: int) -> None:
        if index == 2:
            raise Boom

    x, y = make_data(40)
    model, ref = LinearModel(), LinearModel()
    model.on_step = explode
    with pytest.raises(Boom):
        await fit(model, x, y, batch_size=2, verbose=0, shuffle=False)
    assert len(model.trained()) == 3  # 0, 1, and 2 which raised
    for b in batches_of(x, y, 2)[:2]:
        ref.train_on_batch(*b)
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


async def test_stop_training_set_by_the_model_stops_at_once() -> None:
    x, y = make_data(40)
    model = LinearModel()

    def stop_at_1(index: int) -> None:
        if index == 1:
            model.stop_training = True

    model.on_step = stop_at_1
    history = await fit(model, x, y, batch_size=2, epochs=3, verbose=0)
    assert len(model.trained()) == 2
    assert history.epoch == [0]


async def test_bad_batch_in_a_list_of_batches_stops_before_it() -> None:
    x, y = make_data(20)
    batches: list[Any] = batches_of(x, y, 2)
    batches[3] = (np.array([[1.0, np.nan], [0.0, 0.0]]), y[:2])
    model, ref = LinearModel(), LinearModel()
    with pytest.raises(DataError, match="batch 3"):
        await fit(model, batches, verbose=0, shuffle=False)
    for b in batches[:3]:
        ref.train_on_batch(*b)
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


async def test_progress_bar_alone_sees_every_batch_in_order() -> None:
    stream = io.StringIO()
    x, y = make_data(40)
    history = await fit(
        LinearModel(), x, y, batch_size=4, epochs=2, verbose=1,
        callbacks=[ProgbarLogger(stream=stream)],
    )  # fmt: skip
    out = stream.getvalue()
    assert "10/10" in out
    assert f"loss: {history.history['loss'][-1]:.4f}" in out


async def test_validation_data_with_sample_weight() -> None:
    x, y = make_data(8)
    vx, vy = make_data(6, seed=5)
    vw = np.array([0.0, 1.0, 2.0, 0.5, 1.0, 3.0])
    model = LinearModel()
    recorder = Recorder()
    await fit(
        model, x, y, batch_size=8, verbose=0, shuffle=False, validation_data=(vx, vy, vw),
        validation_batch_size=6, callbacks=[recorder],
    )  # fmt: skip
    # Closed form with the weights after one full-batch step.
    err = (vx @ model.w + model.b)[:, 0] - vy
    want = float(np.sum(vw * err**2) / 6)
    assert epoch_ends(recorder)[0][1]["val_loss"] == pytest.approx(want, rel=1e-12)


async def test_a_model_that_is_not_trainable_is_a_type_error() -> None:
    class NotAModel:
        def train_on_batch(self, x: Any, y: Any) -> None: ...

    x, y = make_data(4)
    with pytest.raises(
        TypeError, match=r"missing test_on_batch.*Received: model of type NotAModel"
    ):
        await fit(NotAModel(), x, y, verbose=0)


async def test_one_shot_validation_generator_warns_when_it_runs_out() -> None:
    x, y = make_data(8)
    with pytest.warns(UserWarning, match="validation data ran out: no validation after epoch 2"):
        history = await fit(
            LinearModel(), x, y, epochs=2, verbose=0,
            validation_data=counting_stream(batches_of(x, y, 4), []),
        )  # fmt: skip
    assert len(history.history["val_loss"]) == 1  # Keras-like: the key only when it ran


async def test_other_tasks_run_between_batches_however_fast_the_steps() -> None:
    """Even when the compute thread keeps ahead, the engine yields to the loop."""
    import anyio
    import anyio.lowlevel

    from aiofit.engine.loop import AHEAD

    x, y = make_data(2000)
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await anyio.lowlevel.checkpoint()
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await fit(InstantModel(), x, y, batch_size=1, verbose=0, shuffle=False)
        done.set()
    assert ticks >= 2000 // (2 * AHEAD)


class InstantModel(LinearModel):
    """A step that costs next to nothing: the thread easily keeps ahead of the engine."""

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        return {"loss": 0.0}
