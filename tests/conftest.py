"""Shared fixtures: engine tests run on asyncio, asyncio+uvloop and trio."""

from __future__ import annotations

import importlib.util

import pytest

_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
        ),
    ),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Tests marked ``@pytest.mark.anyio`` run once per event loop."""
    return request.param  # type: ignore[no-any-return]
