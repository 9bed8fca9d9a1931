"""``python -m aiofit demo``: learn the shipped handwritten digits from a TCP stream, offline.

An in-process :func:`~aiofit.sources.serve_batches` server streams the training
split over loopback; ``fit`` reads it with :func:`~aiofit.sources.from_tcp`, with
a validation set, the progress bar, EarlyStopping (best weights restored), two
ModelCheckpoints and, when matplotlib is installed, PlotHistory. The held-out test
split is then evaluated and the model, the plot and the throughput reported.

Epochs over TCP: the client holds **one connection for the whole run** and the
server streams ``epochs`` passes over the training split on it, reshuffled at
every pass from the seed; ``fit`` gets ``steps_per_epoch`` = batches per pass, so
every epoch is exactly one pass. That keeps the per-epoch reshuffle (one fresh
connection per epoch would replay the seeded order every time) and pays the
connection set-up once. When EarlyStopping ends training, ``fit`` closes the
stream and the server simply sees its client leave.

Files in ``out``: ``digits-mlp.aiofit`` (the best epoch by ``val_loss``, which is
also the final model, as EarlyStopping restores those weights),
``last-epoch.aiofit`` (rewritten after every epoch, so an interrupted run leaves
a usable checkpoint) and ``training.png``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from .. import callbacks, datasets, layers
from ..callbacks.base import Logs
from ..nn import Sequential
from ..sources import from_tcp, serve_batches
from ._common import UsageError, run_async

__all__ = ["BEST", "LAST", "PLOT", "add_arguments", "build_model", "run", "run_demo"]

BEST, LAST, PLOT = "digits-mlp.aiofit", "last-epoch.aiofit", "training.png"
BATCH_SIZE = 32
ATTRIBUTION = ("UCI Optical Recognition of Handwritten Digits, E. Alpaydin & C. Kaynak "
               "(1998), CC BY 4.0, doi:10.24432/C50P49")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's flags."""
    parser.add_argument("--epochs", type=int, default=50,
                        help="most epochs to train; early stopping usually ends sooner (50)")
    parser.add_argument("--patience", type=int, default=5,
                        help="EarlyStopping patience, in epochs (default 5)")
    parser.add_argument("--out", type=Path, default=Path("aiofit-demo"),
                        help="folder for the checkpoints and the plot (default ./aiofit-demo)")
    parser.add_argument("--verbose", default="auto", choices=["auto", "0", "1", "2"],
                        help="progress output: 1 a bar, 2 a line per epoch (default auto)")


def run(args: argparse.Namespace) -> int:
    """Run the demo from parsed arguments; return the exit code."""
    for name in ("epochs", "patience"):
        if getattr(args, name) < (1 if name == "epochs" else 0):
            raise UsageError(f"--{name} is too small. Received: {getattr(args, name)}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)  # fail before training, not after it
    except OSError as exc:
        raise UsageError(f"--out: cannot create the folder: {exc}. Received: {args.out}") from exc
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    run_async(lambda: run_demo(args.out, epochs=args.epochs, patience=args.patience,
                               verbose=verbose))
    return 0


def build_model(seed: int = 0) -> Sequential:
    """The demo's MLP: 64 -> 128 -> 64 -> 10, compiled with Adam."""
    model = Sequential(
        [
            layers.Input(shape=(64,)),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.1),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class _StepClock(callbacks.Callback):
    """Seconds spent in training steps: from each epoch's start to its last batch.

    Leaves out validation, checkpoints and the plot (PlotHistory renders every
    epoch, which would otherwise dominate the figure for a model this small).
    """

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.samples = 0
        self._start = self._last = 0.0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._last = time.perf_counter()
        self.samples += int((logs or {}).get("size", 0))

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.seconds += self._last - self._start


def _callbacks(out_dir: Path, patience: int) -> list[callbacks.Callback]:
    chosen: list[callbacks.Callback] = [
        _StepClock(),
        callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                restore_best_weights=True),
        callbacks.ModelCheckpoint(out_dir / BEST, monitor="val_loss", save_best_only=True),
        callbacks.ModelCheckpoint(out_dir / LAST),
    ]
    try:
        chosen.append(callbacks.PlotHistory(out_dir / PLOT))
    except ImportError:
        print('(no training plot: matplotlib is missing; pip install "aiofit[plot]" adds it)')
    return chosen


async def run_demo(out_dir: Path, *, epochs: int = 50, patience: int = 5,
                   verbose: int | str = "auto", seed: int = 0) -> dict[str, Any]:
    """Serve, train, evaluate; files go to ``out_dir`` (which must exist).

    Returns:
        The test logs plus ``samples_per_s`` (training steps only) and ``model`` (path).
    """
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=seed)
    x_fit, x_val, y_fit, y_val = datasets.split(x_train, y_train, 0.1, seed=seed)
    print(f"data: {ATTRIBUTION}")
    model = build_model(seed)
    chosen = _callbacks(out_dir, patience)
    async with serve_batches(x_fit, y_fit, batch_size=BATCH_SIZE, shuffle=True, seed=seed,
                             epochs=epochs) as server:
        print(f"serving {len(x_fit)} training images on {server.host}:{server.port}; "
              f"training from the stream with {len(x_val)} for validation, {len(x_test)} "
              f"held out for testing")
        start = time.perf_counter()
        await model.fit(
            from_tcp(server.host, server.port), epochs=epochs,
            steps_per_epoch=math.ceil(len(x_fit) / BATCH_SIZE),
            validation_data=(x_val, y_val), callbacks=chosen, verbose=verbose,
        )
        seconds = time.perf_counter() - start
    logs = await model.evaluate(x_test, y_test, verbose=0)
    clock = chosen[0]
    assert isinstance(clock, _StepClock)
    samples_per_s = clock.samples / max(clock.seconds, 1e-9)
    print(f"test accuracy: {logs['accuracy']:.4f} - test loss: {logs['loss']:.4f}")
    plotted = any(isinstance(c, callbacks.PlotHistory) for c in chosen)
    extras = "validation, checkpoints and plot" if plotted else "validation and checkpoints"
    print(f"throughput: {samples_per_s:,.0f} samples/s trained from loopback TCP "
          f"({clock.samples} samples in {clock.seconds:.2f} s of training steps; "
          f"{seconds:.2f} s in all with {extras})")
    print(f"model saved to {out_dir / BEST} (reload with aiofit.load_model); "
          f"last epoch in {out_dir / LAST}")
    if plotted:
        print(f"training plot saved to {out_dir / PLOT}")
    return {**logs, "samples_per_s": samples_per_s, "model": str(out_dir / BEST)}
