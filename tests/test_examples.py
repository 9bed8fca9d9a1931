"""Every script in examples/ runs as a user would run it, and does what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> a line its output must contain (checked as a regular expression)
EXPECTED = {
    "arrays.py": r"test accuracy 0\.9[5-9]",
    "async_generator.py": r"learned y = 2\.9\d x0 \+ -(1\.9\d|2\.0\d) x1 \+ (0\.9\d|1\.0\d)",
    "sync_generator.py": r"final training accuracy 0\.[6-9]",
    "indexable_dataset.py": r"final training accuracy 0\.[6-9]",
    "custom_callback.py": r"\[dashboard\] epoch 5: accuracy 0\.[6-9]",
    "trio_backend.py": r"heartbeat ticked [1-9]\d* times",
    "custom_trainable.py": r"test accuracy: 0\.9[3-9]",
    "distributed_mnist_like.py": r"1 rank\(s\) trained \d+ epochs; checkpoint saved; "
    r"val accuracy 0\.9\d",
    "tcp_pair.py": r"server sent \d+ frames[\s\S]*test accuracy 0\.9[5-9]",
    "http_ndjson.py": r"15 requests, one per epoch[\s\S]*test accuracy 0\.9[5-9]",
}


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    # service.py has tests/test_service.py; redis_stream.py needs a server, which
    # tests/sources/test_redis_stream.py starts and runs it against.
    assert scripts <= set(EXPECTED) | {"service.py", "redis_stream.py"}, scripts - set(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(EXPECTED[script], result.stdout), result.stdout
