"""What the numbers were measured on: CPU, cores, BLAS and its threads, Python, loops."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def blas() -> dict[str, Any]:
    """The BLAS numpy uses and its thread count (threadpoolctl, else numpy's config)."""
    try:
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if libs:
            lib = libs[0]
            return {"name": lib.get("internal_api"), "version": lib.get("version"),
                    "threads": lib.get("num_threads"), "via": "threadpoolctl"}  # fmt: skip
    except ImportError:
        pass
    try:
        config: Any = np.show_config(mode="dicts")
        name = config["Build Dependencies"]["blas"]["name"]
    except (TypeError, KeyError):
        name = "unknown"
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return {"name": name, "version": None, "threads": threads or "default (all cores)",
            "via": "numpy.show_config (install threadpoolctl for the thread count)"}  # fmt: skip


def describe() -> dict[str, Any]:
    """Everything the report prints about the machine, as a JSON-ready dict."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    loops = {"asyncio": "stdlib"}
    for dist in ("uvloop", "trio"):
        loops[dist] = _version(dist) or "not installed"
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "blas": blas(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "numpy": np.__version__,
        "anyio": _version("anyio"),
        "aiofit": _version("aiofit"),
        "torch": _version("torch") or "not installed",
        "event_loops": loops,
    }


def format_machine(m: dict[str, Any]) -> str:
    """The machine as a short Markdown list."""
    b = m["blas"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average"]) if m["load_average"] else "n/a"
    loops = ", ".join(f"{k} ({v})" for k, v in m["event_loops"].items())
    return "\n".join([
        f"- CPU: {m['cpu']}; cores: {m['cores']} (usable: {m['cores_usable']}); "
        f"load average: {load}",
        f"- BLAS: {b['name']} {b['version'] or ''} with {b['threads']} threads (via {b['via']})",
        f"- Python: {m['python']} on {m['platform']}; numpy {m['numpy']}, anyio {m['anyio']}, "
        f"aiofit {m['aiofit']}, torch {m['torch']}",
        f"- Event loops: {loops}",
    ])  # fmt: skip
