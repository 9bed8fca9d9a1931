"""Data sources: in-memory arrays, iterables, indexable datasets and network streams.

``fit`` accepts arrays, iterables and datasets directly; the network sources here
are async iterables of batches that plug into it the same way.
"""

from __future__ import annotations

from .._exceptions import ProtocolError
from .http import HttpSource, from_http
from .tcp import BatchServer, TcpStream, from_tcp, serve_batches

__all__ = [
    "BatchServer",
    "HttpSource",
    "ProtocolError",
    "TcpStream",
    "from_http",
    "from_tcp",
    "serve_batches",
]
