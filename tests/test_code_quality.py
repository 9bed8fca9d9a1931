"""The house rules that a linter and a type checker can hold us to."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "aiofit", "tests", "examples", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    result = _run("mypy", "aiofit")
    assert result.returncode == 0, result.stdout + result.stderr


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "aiofit" / "py.typed").is_file()


def test_nn_core_never_imports_async_libraries() -> None:
    """``aiofit.nn`` is plain synchronous numpy: usable with no event loop at all."""
    async_libs = {"anyio", "asyncio", "trio", "sniffio"}
    offenders = []
    for path in sorted((ROOT / "aiofit" / "nn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in async_libs]
    assert offenders == []
