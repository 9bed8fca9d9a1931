"""The error tree of aiofit.

    ValueError
    └── DataError        a batch that cannot be trained on (shape, dtype, NaN, labels...)

Errors raised by user code (sources, callbacks, custom models) are never wrapped:
they reach the caller of ``fit`` as themselves.
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A batch is malformed: the message names the batch and the problem.

    Raised before anything is updated, so the model is unchanged by it.
    """
