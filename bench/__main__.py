"""``python -m bench [--quick] [--json PATH]``: every benchmark, one table of ratios.

Each module named in :data:`BENCHMARKS` has ``run(level) -> rows`` (see
``bench/_report.py`` for the row keys); this runs them in order, prints the
machine and one Markdown table, and writes everything as JSON with ``--json``.
Adding a benchmark is one line in :data:`BENCHMARKS`. A benchmark that crashes
becomes a failed row; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench._machine import describe, format_machine
from bench._report import error_row, format_table

#: The benchmark modules of this package, in the order they run.
BENCHMARKS = [
    "nn_step",
    "engine_overhead",
    "overlap",
    "loop_lag",
    "memory",
    "tcp_stream",
    "service_latency",
    "mpi_allreduce",
    "torch_parity",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds and smaller sizes (under 2 minutes on 2 cores)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only these benchmarks (of: {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a target is missed")  # fmt: skip
    return parser


def run_all(names: list[str], level: str) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run the named benchmarks; their rows, and each one's wall time in seconds."""
    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            rows.extend(module.run(level))
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            rows.append(error_row(name, exc))
        seconds[name] = time.perf_counter() - start
    return rows, seconds


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--"]:  # ``python -m aiofit bench -- --quick`` forwards the separator
        argv = argv[1:]
    args = _parser().parse_args(argv)
    level = "quick" if args.quick else "full"
    command = "python -m bench" + "".join(f" {shlex.quote(a)}" for a in argv)
    machine = describe()
    start = time.perf_counter()
    rows, seconds = run_all(args.only or BENCHMARKS, level)
    total = time.perf_counter() - start
    missed = [r for r in rows if r["passed"] is False]
    met = sum(r["passed"] is True for r in rows)
    print(f"## aiofit benchmarks\n\n`{command}` ({level} run, {total:.0f} s)\n")
    print(format_machine(machine) + "\n")
    print(format_table(rows))
    print(
        f"\n{met} targets met, {len(missed)} missed; ratios are medians of A/B rounds "
        "measured side by side in this run (±: half the inter-quartile range)."
    )
    if args.json:
        report = {
            "command": command,
            "level": level,
            "seconds": total,
            "seconds_per_benchmark": seconds,
            "machine": machine,
            "rows": rows,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"JSON written to {args.json}")  # fmt: skip
    crashed = any(r["case"] == "crashed" for r in rows)
    return 1 if crashed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
