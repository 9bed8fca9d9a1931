"""Data sources: in-memory arrays, iterables, indexable datasets and network streams.

``fit`` accepts arrays, iterables and datasets directly; the network sources here
are async iterables of batches that plug into it the same way.
"""

from __future__ import annotations

from .._exceptions import ProtocolError
from .http import HttpSource, from_http

# redis-py is imported only when a stream is made: this works without the extra.
from .redis_stream import RedisStream, StreamField, encode_entry, from_redis_stream
from .tcp import BatchServer, TcpStream, from_tcp, serve_batches

__all__ = [
    "BatchServer",
    "HttpSource",
    "ProtocolError",
    "RedisStream",
    "StreamField",
    "TcpStream",
    "encode_entry",
    "from_http",
    "from_redis_stream",
    "from_tcp",
    "serve_batches",
]
