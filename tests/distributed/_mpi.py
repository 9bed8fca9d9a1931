"""Start ``mpiexec -n N python -m mpi4py SCRIPT`` from a test, with a timeout."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent / "mpi_scripts"


def mpiexec() -> str | None:
    """The launcher of the ``mpi`` extra (next to this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or mpiexec() is None,
    reason='the mpi extra is not installed (pip install "aiofit[mpi]": mpi4py and mpich)',
)


def run_mpi(script: str, *args: str, ranks: int = 2, timeout: float = 90,
            check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``mpi_scripts/<script>`` on ``ranks`` processes, one BLAS thread each."""
    launcher = mpiexec()
    assert launcher is not None
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [launcher, "-n", str(ranks), sys.executable, "-m", "mpi4py",
               str(SCRIPTS / script), *args]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                            check=False)  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result
