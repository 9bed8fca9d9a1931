"""Run ``python -m aiofit`` as a child process the way a terminal would, and reap it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def start_aiofit(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """``python -m aiofit ARGS`` with pipes for stdout and stderr."""
    # A child started from a non-interactive shell may inherit SIGINT ignored; Ctrl-C
    # tests need the default handler, as in a terminal.
    return subprocess.Popen(
        [sys.executable, "-m", "aiofit", *args], cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def stop(child: subprocess.Popen[str]) -> None:
    """Kill (a no-op if it has exited), reap, and close the pipes."""
    child.kill()
    child.communicate()
