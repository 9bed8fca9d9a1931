"""Rows every benchmark returns, and the one Markdown table they are printed in.

A row is a plain dict (so it goes to JSON as is) with :data:`ROW_KEYS`:
``benchmark``, ``case``, ``measured`` (the figure as printed, median and spread),
``target`` (as printed, ``-`` when the figure is informative only), ``passed``
(True, False, or None when there is no target), ``median`` and ``spread`` (the
numbers behind ``measured``: a ratio, a time, a size...), ``unit`` and
``details`` (whatever else the benchmark wants in the JSON).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

ROW_KEYS = ("benchmark", "case", "measured", "target", "passed", "median", "spread", "unit",
            "details")  # fmt: skip
#: How big a run is: "smoke" (tests: tiny sizes), "quick" (< 2 min in all), "full".
LEVELS = ("smoke", "quick", "full")


def make_row(
    benchmark: str,
    case: str,
    measured: str,
    *,
    target: str = "-",
    passed: bool | None = None,
    median: float | None = None,
    spread: float | None = None,
    unit: str = "",
    **details: Any,
) -> dict[str, Any]:
    """One table row (see the module docstring for the keys)."""
    return {
        "benchmark": benchmark,
        "case": case,
        "measured": measured,
        "target": target,
        "passed": passed,
        "median": median,
        "spread": spread,
        "unit": unit,
        "details": details,
    }


def median_spread(samples: Sequence[float]) -> tuple[float, float]:
    """The median and half the inter-quartile range relative to it.

    Under 4 samples the quartiles mean little, so the spread is half the range.
    """
    median = statistics.median(samples)
    if median == 0:
        return median, 0.0
    if len(samples) < 4:
        return median, (max(samples) - min(samples)) / 2 / abs(median)
    q = statistics.quantiles(samples, n=4)
    return median, abs(q[2] - q[0]) / 2 / abs(median)


def pick(level: str, smoke: Any, quick: Any, full: Any) -> Any:
    """The size that goes with ``level``."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}. Received: level={level!r}")
    return {"smoke": smoke, "quick": quick, "full": full}[level]


def error_row(benchmark: str, exc: BaseException) -> dict[str, Any]:
    """The row of a benchmark that crashed: the suite goes on and shows it failed."""
    return make_row(benchmark, "crashed", f"{type(exc).__name__}: {exc}"[:120],
                    target="runs", passed=False)  # fmt: skip


def verdict(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "-"}[passed]


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one Markdown table."""
    lines = ["| benchmark | case | measured (median ±spread) | target | result |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        cells = (r["benchmark"], r["case"], r["measured"], r["target"], verdict(r["passed"]))
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
