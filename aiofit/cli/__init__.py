"""The command line, ``python -m aiofit [demo|serve|train|bench]`` (also the ``aiofit`` script).

Exit codes: 0 done, 1 a run-time failure (an unreachable server, bad data),
2 a usage error (a bad flag, a missing file), 130 interrupted by Ctrl-C. Every
failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from .._exceptions import DataError
from . import demo, serve, train
from ._common import CliError, UsageError

__all__ = ["main"]

_COMMANDS: dict[str, tuple[str, Callable[..., None], Callable[..., int]]] = {
    "demo": ("train on the shipped digits streamed over loopback TCP (the default)",
             demo.add_arguments, demo.run),
    "serve": ("serve a .npz/.csv dataset as a TCP batch stream",
              serve.add_arguments, serve.run),
    "train": ("train a model from flags or a config, from a file, TCP, HTTP or Redis source",
              train.add_arguments, train.run),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error reported as one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m aiofit",
                     description="aiofit: Keras's fit loop for async Python.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, add_arguments, _) in _COMMANDS.items():
        module = sys.modules[add_arguments.__module__]
        add_arguments(sub.add_parser(name, help=help_text, description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    bench = sub.add_parser("bench", help="run the benchmarks (needs a source checkout)")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="passed to python -m bench")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["demo", *argv]  # the demo is the default command, flags and all
    if argv[0] == "bench" and argv[1:2] not in (["-h"], ["--help"]):
        # argparse's REMAINDER rejects leading --options: hand them over untouched
        args = argparse.Namespace(command="bench", args=argv[1:])
    else:
        args = _parser().parse_args(argv)
    command = args.command
    # Progress lines reach a pipe (tee, a log collector) as they are printed.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        if command == "bench":
            return _bench(args.args)
        return _COMMANDS[command][2](args)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {command} stopped cleanly{_checkpoint_note(args)}",
              file=sys.stderr)
        return 130
    except (CliError, DataError) as exc:
        code = exc.exit_code if isinstance(exc, CliError) else 1
        print(f"python -m aiofit {command}: error: {exc}", file=sys.stderr)
        return code


def _checkpoint_note(args: argparse.Namespace) -> str:
    out = getattr(args, "out", None)
    if out is None:
        return ""
    saved = [p for p in (out / demo.LAST, out / train.CHECKPOINT) if p.exists()]
    return f"; last checkpoint: {saved[0]}" if saved else ""


def _bench(rest: list[str]) -> int:
    import importlib.util
    import runpy

    if importlib.util.find_spec("bench") is None:
        raise UsageError("the benchmarks live in the source checkout: run this from the "
                         "project root (or python -m bench there). Received: no 'bench' package")
    sys.argv = ["bench", *rest]
    runpy.run_module("bench", run_name="__main__", alter_sys=True)
    return 0
