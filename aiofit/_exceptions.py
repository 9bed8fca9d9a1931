"""The error tree of aiofit.

    ValueError
    └── DataError        a batch that cannot be trained on (shape, dtype, NaN, labels...)
        └── ProtocolError    a batch stream broke its wire format (bad frame, gap in sequence)

Errors raised by user code (sources, callbacks, custom models) are never wrapped:
they reach the caller of ``fit`` as themselves.
"""

from __future__ import annotations

__all__ = ["DataError", "ProtocolError"]


class DataError(ValueError):
    """A batch is malformed: the message names the batch and the problem.

    Raised before anything is updated, so the model is unchanged by it.
    """


class ProtocolError(DataError):
    """A batch stream broke its wire format: the message names the frame and the problem.

    Raised by the TCP source (see :mod:`aiofit.sources.wire`) for a bad header, a
    frame over the size limit, a truncated frame, an array that cannot be read
    without pickle, or a gap in the sequence numbers; the connection is closed.
    """
