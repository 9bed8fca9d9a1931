"""``python -m aiofit serve DATA``: serve a ``.npz`` or ``.csv`` dataset as a TCP batch stream.

Every client that connects gets its own stream: ``--epochs`` passes over the data
(or endless passes with ``--forever``), then the end-of-stream frame. With
``--shuffle`` each pass is reshuffled; ``--seed`` makes the order the same on
every connection, which is what a reconnecting ``from_tcp(..., reconnect=True)``
needs to resume. Runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio

from ..sources import serve_batches
from ._common import UsageError, existing_file, load_dataset, run_async

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve command's flags."""
    parser.add_argument("data", type=Path,
                        help=".npz (arrays x, y[, sample_weight]) or .csv with a header row")
    parser.add_argument("--label-column", default="label",
                        help="the .csv column holding y (default 'label')")
    parser.add_argument("--weight-column", default=None,
                        help="the .csv column holding sample weights (default: none)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0,
                        help="port to bind; 0 lets the OS pick one (printed) (default 0)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per batch (32)")
    parser.add_argument("--shuffle", action="store_true", help="reshuffle every pass")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed the shuffle: the same order on every connection")
    passes = parser.add_mutually_exclusive_group()
    passes.add_argument("--epochs", type=int, default=1,
                        help="passes over the data per connection (default 1)")
    passes.add_argument("--forever", action="store_true",
                        help="stream endless passes to every client")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; return the exit code."""
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port must be in 0..65535. Received: {args.port}")
    for name in ("batch_size", "epochs"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be at least 1. Received: {getattr(args, name)}")
    arrays = load_dataset(existing_file(args.data, "data"), args.label_column, args.weight_column)
    run_async(lambda: _serve(args, arrays))
    return 0


async def _serve(args: argparse.Namespace, arrays: tuple) -> None:
    epochs = None if args.forever else args.epochs
    server = serve_batches(*arrays, host=args.host, port=args.port, batch_size=args.batch_size,
                           shuffle=args.shuffle, seed=args.seed, epochs=epochs)
    async with server:
        passes = "endless passes" if epochs is None else f"{epochs} pass(es)"
        print(f"serving {len(arrays[0])} samples from {args.data} in batches of "
              f"{args.batch_size}, {passes} per connection")
        print(f"listening on {server.host}:{server.port} (Ctrl-C to stop)", flush=True)
        await anyio.sleep_forever()
