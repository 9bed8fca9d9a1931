"""``python -m aiofit train``: train a model described by flags or a config from a source.

Sources (exactly one): ``--data file.npz|.csv``, ``--tcp HOST:PORT`` (a batch
server such as ``python -m aiofit serve``), ``--http URL`` (with ``--format`` and
the field flags) or ``--redis URL`` (with ``--stream``/``--group``/``--consumer``).

Epochs over TCP: without ``--steps-per-epoch`` every epoch opens a new connection
and reads it to the end of the stream, which fits a server streaming one pass per
connection (``serve``'s default). With ``--steps-per-epoch N`` one connection
feeds the whole run, N batches an epoch, which fits ``serve --epochs E`` or
``--forever``. The model is checkpointed to ``OUT/model.aiofit`` after every epoch.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .. import callbacks, distributed, sources
from ._common import CliError, UsageError, existing_file, load_dataset, parse_address, run_async
from ._model_spec import ModelSpec, infer_outputs, load_config

__all__ = ["add_arguments", "run"]

CHECKPOINT = "model.aiofit"
_SPEC_FLAGS = ("layers", "activation", "dropout", "outputs", "output_activation", "loss",
               "optimizer", "learning_rate", "metrics", "epochs", "batch_size", "seed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The train command's flags."""
    source = parser.add_argument_group("source (exactly one)")
    source.add_argument("--data", type=Path, help=".npz (x, y[, sample_weight]) or .csv file")
    source.add_argument("--tcp", metavar="HOST:PORT", help="a TCP batch stream")
    source.add_argument("--http", metavar="URL", help="a streaming HTTP endpoint")
    source.add_argument("--redis", metavar="URL", help="a Redis stream (with --stream etc.)")
    opts = parser.add_argument_group("source options")
    opts.add_argument("--label-column", default="label", help=".csv column holding y")
    opts.add_argument("--weight-column", default=None, help=".csv column holding weights")
    opts.add_argument("--steps-per-epoch", type=int, default=None,
                      help="batches per epoch from one live stream (see above)")
    opts.add_argument("--format", default="ndjson", choices=["ndjson", "csv", "npy"],
                      help="--http body format (default ndjson)")
    opts.add_argument("--x-field", help="--http input key(s)/column(s), comma-separated")
    opts.add_argument("--y-field", help="--http target key(s)/column(s), comma-separated")
    opts.add_argument("--weight-field", help="--http sample weight key/column")
    for name in ("stream", "group", "consumer"):
        opts.add_argument(f"--{name}", help=f"--redis {name} name")
    model = parser.add_argument_group("model (flags override --config)")
    model.add_argument("--config", type=Path, help="a .toml or .json file of the settings below")
    model.add_argument("--layers", help="hidden Dense units, e.g. 64,32 (default 64)")
    model.add_argument("--activation", help="hidden activation (default relu)")
    model.add_argument("--dropout", type=float, help="Dropout rate after each hidden layer")
    model.add_argument("--outputs", type=int, help="output units (inferred from file data)")
    model.add_argument("--output-activation", help="default: from the loss")
    model.add_argument("--loss", help="default sparse_categorical_crossentropy")
    model.add_argument("--optimizer", help="sgd, adam, adamw, rmsprop, adagrad (default adam)")
    model.add_argument("--learning-rate", type=float, help="default: the optimizer's")
    model.add_argument("--metrics", help="comma-separated (default accuracy for crossentropy)")
    model.add_argument("--epochs", type=int, help="default 10")
    model.add_argument("--batch-size", type=int, help="for --data and --http (default 32)")
    model.add_argument("--seed", type=int, help="seeds init, dropout, shuffling (default 0)")
    parser.add_argument("--validation-data", type=Path, help=".npz or .csv validation set")
    parser.add_argument("--out", type=Path, default=Path("aiofit-train"),
                        help=f"folder for the checkpoint {CHECKPOINT} (default ./aiofit-train)")
    parser.add_argument("--verbose", default="auto", choices=["auto", "0", "1", "2"])


def run(args: argparse.Namespace) -> int:
    """Train from parsed arguments; return the exit code."""
    chosen = [n for n in ("data", "tcp", "http", "redis") if getattr(args, n) is not None]
    if len(chosen) != 1:
        raise UsageError("give exactly one source: --data, --tcp, --http or --redis. "
                         f"Received: {['--' + n for n in chosen] or 'none'}")
    spec = _spec(args)
    data = _file_data(args)
    if data is not None and spec.outputs is None:
        spec = spec.merged({"outputs": infer_outputs(data[1], spec.loss)})
    validation = None
    if args.validation_data is not None:
        path = existing_file(args.validation_data, "--validation-data")
        validation = load_dataset(path, args.label_column, args.weight_column)
    source = _stream_source(args, spec) if data is None else None
    model = spec.build()
    _make_out(args.out)
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    fit_args: dict[str, Any] = dict(
        epochs=spec.epochs, verbose=verbose, validation_data=validation,
        callbacks=_callbacks(args),
        steps_per_epoch=args.steps_per_epoch,
    )
    if data is not None:
        fit_args.update(batch_size=spec.batch_size, shuffle=True)
    if distributed.launched_by_mpi():  # mpiexec -n N python -m mpi4py -m aiofit train ...
        fit_args["strategy"] = distributed.DataParallel()
    history = run_async(lambda: model.fit(*(data or (source,)), **fit_args))
    if "strategy" not in fit_args or distributed.is_primary():
        _report(history, args.out / CHECKPOINT)
    return 0


def _callbacks(args: argparse.Namespace) -> list[callbacks.Callback]:
    """A checkpoint every epoch; for Redis also the backups that let entries be acked.

    A Redis entry is acknowledged only once a durable backup covers the batch it
    was trained in (see ``aiofit.sources.redis_stream``), so a rerun of the same
    command after a crash resumes with no entry lost or trained twice.
    """
    chosen: list[callbacks.Callback] = [callbacks.ModelCheckpoint(args.out / CHECKPOINT)]
    if args.redis is not None:
        chosen.append(callbacks.BackupAndRestore(args.out / "backup", save_freq="epoch"))
    return chosen


def _spec(args: argparse.Namespace) -> ModelSpec:
    spec = ModelSpec()
    if args.config is not None:
        spec = spec.merged(load_config(existing_file(args.config, "--config")))
    return spec.merged({name: getattr(args, name) for name in _SPEC_FLAGS})


def _file_data(args: argparse.Namespace) -> tuple[np.ndarray, ...] | None:
    if args.data is None:
        return None
    return load_dataset(existing_file(args.data, "--data"), args.label_column,
                        args.weight_column)


def _stream_source(args: argparse.Namespace, spec: ModelSpec) -> Any:
    address = parse_address(args.tcp) if args.tcp is not None else None
    if spec.outputs is None:
        spec.build()  # raises the UsageError asking for --outputs
    if address is not None:
        host, port = address
        if args.steps_per_epoch is not None:
            return sources.from_tcp(host, port)
        return _TcpEpochs(host, port)
    if args.http is not None:
        return _http_source(args, spec)
    return _redis_source(args, spec)


class _TcpEpochs:
    """Re-iterable: each pass (each epoch) is a new connection read to its end."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __aiter__(self) -> sources.TcpStream:
        return sources.from_tcp(self.host, self.port)


def _fields(text: str | None) -> str | list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    return names[0] if len(names) == 1 else names


def _http_source(args: argparse.Namespace, spec: ModelSpec) -> Any:
    if args.format != "npy" and args.x_field is None:
        raise UsageError(f"--http with --format {args.format} needs --x-field (and usually "
                         "--y-field). Received: --x-field not given")
    fields = {"x": _fields(args.x_field), "y": _fields(args.y_field),
              "sample_weight": args.weight_field}
    if args.format == "npy":
        fields = {}
    try:
        return sources.from_http(args.http, args.format, spec.batch_size, **fields)
    except ImportError as exc:
        raise CliError(str(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


def _redis_source(args: argparse.Namespace, spec: ModelSpec) -> Any:
    missing = [f"--{n}" for n in ("stream", "group", "consumer") if getattr(args, n) is None]
    if missing:
        raise UsageError(f"--redis needs {', '.join(missing)}. Received: --redis {args.redis}")
    return sources.from_redis_stream(args.redis, args.stream, args.group, args.consumer,
                                     spec.batch_size)


def _make_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create the folder: {exc}. Received: {out}") from exc


def _report(history: Any, checkpoint: Path) -> None:
    if not history.epoch:
        print("no epoch was trained (the source gave no data)")
        return
    last = {k: v[-1] for k, v in history.history.items()}
    numeric = {k: v for k, v in last.items() if isinstance(v, int | float | np.number)}
    shown = " - ".join(f"{k}: {v:.4f}" for k, v in numeric.items())
    print(f"trained {len(history.epoch)} epoch(s): {shown}")
    print(f"model saved to {checkpoint} (reload with aiofit.load_model)")
