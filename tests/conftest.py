"""Shared fixtures: engine tests run on asyncio, asyncio+uvloop and trio."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

#: asyncio and uvloop: for tests of what runs on asyncio only (uvicorn, redis-py)
ASYNCIO_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
        ),
    ),
]
_BACKENDS = [*ASYNCIO_BACKENDS, pytest.param(("trio", {}), id="trio")]


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Tests marked ``@pytest.mark.anyio`` run once per event loop."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder no file can be created in, even by root (who ignores permission bits)."""
    if os.name == "posix" and os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    try:  # /sys is mounted read-only in containers, where tests often run as root
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        yield Path("/sys")
        return
    os.close(fd)
    os.unlink(probe)
    pytest.skip("no read-only folder available")
