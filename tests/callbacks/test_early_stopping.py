"""EarlyStopping against Keras 3's documented semantics, on scripted monitor sequences.

A LambdaCallback ahead of EarlyStopping in the list writes the scripted value
into each epoch's logs (every callback gets the same dict, in list order) and
records the weights at the end of each epoch, so the expected stop epoch and
restored weights can be worked out by hand from the script.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

import aiofit
from aiofit.callbacks import EarlyStopping

from . import conftest
from .conftest import assert_weights_equal, linear_data, make_model

X, Y = linear_data(8, seed=0)
fit_scripted = partial(conftest.fit_scripted, data=(X, Y))


def test_patience_two_stops_at_the_right_epoch_and_restores_the_best_weights() -> None:
    # best 1.0 (e0), 0.8 (e1); e2 wait 1, e3 wait 2 >= patience: stop after epoch 3.
    model = make_model()
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    history, seen = fit_scripted(model, [1.0, 0.8, 0.9, 0.85, 0.7, 0.6], stop)
    assert history.epoch == [0, 1, 2, 3]
    assert history.history["val_loss"] == [1.0, 0.8, 0.9, 0.85]
    assert stop.stopped_epoch == 3
    assert (stop.best, stop.best_epoch) == (0.8, 1)
    assert_weights_equal(model.get_weights(), seen[1])
    assert not np.array_equal(seen[1][0], seen[3][0])  # training really moved on


def test_without_restore_the_last_weights_stay() -> None:
    model = make_model()
    history, seen = fit_scripted(model, [1.0, 0.8, 0.9, 0.85, 0.7], EarlyStopping(patience=2))
    assert history.epoch == [0, 1, 2, 3]
    assert_weights_equal(model.get_weights(), seen[3])


def test_restore_best_weights_also_applies_when_training_completes() -> None:
    # Keras 3 restores in on_train_end, whether or not training stopped early.
    model = make_model()
    stop = EarlyStopping(patience=5, restore_best_weights=True)
    history, seen = fit_scripted(model, [1.0, 0.5, 0.7], stop)
    assert history.epoch == [0, 1, 2]
    assert stop.stopped_epoch == 0
    assert_weights_equal(model.get_weights(), seen[1])


def test_patience_zero_stops_at_the_first_epoch_without_improvement() -> None:
    history, _ = fit_scripted(make_model(), [1.0, 0.9, 0.95, 0.1], EarlyStopping(patience=0))
    assert history.epoch == [0, 1, 2]


def test_baseline_with_patience_zero_stops_at_the_first_epoch_without_gain() -> None:
    # e0 is a best (nothing to compare with) that misses the baseline: wait 1, no stop.
    stop = EarlyStopping(patience=0, baseline=0.1)
    history, _ = fit_scripted(make_model(), [1.0, 2.0, 3.0], stop)
    assert history.epoch == [0, 1]
    assert stop.stopped_epoch == 1


def test_min_delta_counts_small_gains_as_no_improvement() -> None:
    # min_delta=0.1 (sign ignored): 0.95 and 0.94 do not beat 1.0 - 0.1; stop at e2.
    stop = EarlyStopping(patience=2, min_delta=-0.1)
    history, _ = fit_scripted(make_model(), [1.0, 0.95, 0.94, 0.5], stop)
    assert history.epoch == [0, 1, 2]
    assert stop.best == 1.0
    plain, _ = fit_scripted(make_model(), [1.0, 0.95, 0.94, 0.5], EarlyStopping(patience=2))
    assert plain.epoch == [0, 1, 2, 3]


def test_baseline_not_beaten_stops_after_patience_epochs_and_restores_the_best() -> None:
    # e0: best 1.0 but baseline 0.5 not beaten: wait stays 1; e1: no gain, wait 2: stop.
    model = make_model()
    stop = EarlyStopping(patience=2, baseline=0.5, restore_best_weights=True)
    history, seen = fit_scripted(model, [1.0, 1.1, 1.2, 0.1], stop)
    assert history.epoch == [0, 1]
    assert_weights_equal(model.get_weights(), seen[0])


def test_baseline_improving_but_not_beaten_keeps_training() -> None:
    # Keras resets nothing but also never stops on an epoch that improves the best.
    stop = EarlyStopping(patience=1, baseline=0.1)
    history, _ = fit_scripted(make_model(), [1.0, 0.9, 0.8, 0.7, 0.75], stop)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert stop.stopped_epoch == 4


def test_baseline_beaten_resets_the_wait() -> None:
    stop = EarlyStopping(patience=2, baseline=0.5)
    history, _ = fit_scripted(make_model(), [0.4, 0.45, 0.3, 0.35, 0.36, 0.2], stop)
    # best 0.4 (e0), e1 wait 1, e2 new best 0.3 beats baseline: wait 0, e3 1, e4 2: stop.
    assert history.epoch == [0, 1, 2, 3, 4]


def test_start_from_epoch_ignores_the_warm_up_epochs() -> None:
    script = [1.0, 2.0, 3.0, 4.0, 5.0]
    warm, _ = fit_scripted(make_model(), script, EarlyStopping(patience=0, start_from_epoch=2))
    assert warm.epoch == [0, 1, 2, 3]  # e2 is the first best, e3 is worse
    cold, _ = fit_scripted(make_model(), script, EarlyStopping(patience=0))
    assert cold.epoch == [0, 1]


@pytest.mark.parametrize("key", ["val_accuracy", "acc", "val_binary_accuracy"])
def test_auto_mode_maximizes_accuracy_keys(key: str) -> None:
    stop = EarlyStopping(monitor=key, patience=1)
    history, _ = fit_scripted(make_model(), [0.5, 0.6, 0.55, 0.9], stop, key=key)
    assert history.epoch == [0, 1, 2]
    assert stop.best == 0.6


def test_explicit_mode_overrides_the_name() -> None:
    stop = EarlyStopping(monitor="val_accuracy", mode="min", patience=1)
    history, _ = fit_scripted(make_model(), [0.5, 0.6, 0.4], stop, key="val_accuracy")
    assert history.epoch == [0, 1]


@pytest.mark.parametrize(("key", "script", "epochs"), [
    ("val_mae", [1.0, 0.5, 0.6], [0, 1, 2]),
    ("val_reconstruction_loss", [3.0, 2.0, 1.0], [0, 1, 2]),
])  # fmt: skip
def test_auto_mode_minimizes_errors(key: str, script: list[float], epochs: list[int]) -> None:
    stop = EarlyStopping(monitor=key, patience=1)
    history, _ = fit_scripted(make_model(), script, stop, key=key)
    assert history.epoch == epochs
    assert stop.best == min(script)


def test_auto_mode_refuses_a_name_of_unknown_direction() -> None:
    with pytest.raises(ValueError, match=r"maximized or minimized.*Received: monitor='f1ish'"):
        fit_scripted(make_model(), [1.0], EarlyStopping(monitor="f1ish"), key="f1ish")


def test_one_instance_serves_two_fits() -> None:
    stop = EarlyStopping(patience=1, restore_best_weights=True)
    first, _ = fit_scripted(make_model(), [1.0, 0.5, 0.6, 0.1], stop)
    assert first.epoch == [0, 1, 2]
    assert stop.stopped_epoch == 2
    # A fresh best and wait: 3.0 would never beat the first run's 0.5.
    model = make_model()
    second, seen = fit_scripted(model, [3.0, 2.0, 1.0], stop)
    assert second.epoch == [0, 1, 2]
    assert (stop.stopped_epoch, stop.best, stop.best_epoch) == (0, 1.0, 2)
    assert_weights_equal(model.get_weights(), seen[2])


def test_a_missing_monitor_warns_and_never_stops() -> None:
    with pytest.warns(UserWarning, match=r"`val_loss` which is not available.*loss"):
        history, _ = fit_scripted(make_model(), [1.0, 2.0, 3.0], EarlyStopping(), key="other")
    assert history.epoch == [0, 1, 2]


def test_monitors_the_real_training_loss() -> None:
    # No injection: the model's own decreasing loss never triggers a stop.
    model = make_model()
    history = aiofit.run(model.fit(X, Y, batch_size=4, epochs=4, verbose=0,
                                   callbacks=[EarlyStopping(monitor="loss")]))  # fmt: skip
    losses = history.history["loss"]
    assert losses == sorted(losses, reverse=True)
    assert history.epoch == [0, 1, 2, 3]


def test_verbose_reports_the_stop_and_the_restore(capsys: pytest.CaptureFixture[str]) -> None:
    stop = EarlyStopping(patience=1, verbose=1, restore_best_weights=True)
    fit_scripted(make_model(), [1.0, 0.5, 0.7, 0.1], stop)
    out = capsys.readouterr().out
    assert "Epoch 3: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 2." in out


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"mode": "maximum"}, r"Received: mode='maximum'"),
    ({"patience": -1}, r"Received: patience=-1"),
    ({"patience": 1.5}, r"Received: patience=1.5"),
    ({"min_delta": float("nan")}, r"Received: min_delta=nan"),
    ({"baseline": "low"}, r"Received: baseline='low'"),
    ({"start_from_epoch": -2}, r"Received: start_from_epoch=-2"),
])  # fmt: skip
def test_bad_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs)
