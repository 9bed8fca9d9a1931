"""The command line: ``python -m aiofit [demo|bench]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiofit", description="aiofit: Keras's fit loop for async Python."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train on the shipped digits, offline (the default)")
    demo.add_argument("--epochs", type=int, default=15, help="epochs to train (default 15)")
    demo.add_argument("--out", type=Path, default=Path("aiofit-demo"),
                      help="folder for the saved model (default ./aiofit-demo)")
    demo.add_argument("--verbose", default="auto", choices=["auto", "0", "1", "2"])
    bench = sub.add_parser("bench", help="run the benchmarks (needs a source checkout)")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="passed to python -m bench")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m aiofit`` and the ``aiofit`` script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "bench":
            return _bench(args.args)
        return _demo(args)
    except KeyboardInterrupt:
        print("\nInterrupted: stopped cleanly.", file=sys.stderr)
        return 130


def _demo(args: argparse.Namespace) -> int:
    from . import run
    from .demo import run_demo

    epochs = getattr(args, "epochs", 15)
    out = getattr(args, "out", Path("aiofit-demo"))
    verbose = getattr(args, "verbose", "auto")
    out.mkdir(parents=True, exist_ok=True)  # fail before training, not after it
    run(run_demo(out, epochs=epochs, verbose=verbose if verbose == "auto" else int(verbose)))
    return 0


def _bench(rest: list[str]) -> int:
    import runpy

    sys.argv = ["bench", *rest]
    try:
        runpy.run_module("bench", run_name="__main__", alter_sys=True)
    except ImportError:
        print("The benchmarks live in the source checkout: run this from the project "
              "root (python -m bench).", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
