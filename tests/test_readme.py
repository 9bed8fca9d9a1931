"""The README's quick start runs as printed, and opens with the two set-up commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _block_after(heading: str) -> str:
    start = README.index("```python", README.index(heading)) + len("```python")
    return README[start : README.index("```", start)]


def test_quick_start_runs(tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(_block_after("## Quick start"))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        check=False, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "{'loss': " in result.stdout


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    opening = README.index("```bash")
    first_block = README[opening : README.index("```", opening + 7)]
    commands = [line for line in first_block.splitlines() if line.startswith("python3")]
    assert len(commands) == 2
    assert commands[0].endswith("-m aiofit")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == commands[1]
