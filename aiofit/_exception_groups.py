"""Errors out of task groups reach callers as themselves, not as exception groups.

anyio's task groups wrap what a child task raised in a ``BaseExceptionGroup``;
aiofit promises that an error from a source, a callback or the model reaches the
caller as itself, so every task group aiofit owns is left through
:func:`original_errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["original_errors", "unwrapped"]


def unwrapped(exc: BaseException) -> BaseException:
    """The single exception inside (nested) one-exception groups; ``exc`` otherwise."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@contextmanager
def original_errors() -> Iterator[None]:
    """Let a lone error out of a task group reach the caller as itself, not as a group."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf = unwrapped(group)
        if leaf is group:
            raise
        raise leaf from leaf.__cause__
