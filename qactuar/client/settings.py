"""The Client's knobs that are plain values: `Timeout` and `Limits`.

Kept apart from the engine so the aquests interface (and users) can build them
without importing any protocol code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds each phase may take; None waits forever.

    connect: opening the connection (TCP, proxy tunnel and TLS handshake).
    read: the longest silence while a response is awaited or read.
    write: the longest wait for the socket to take more of the request.
    pool: the longest wait for a free connection (or HTTP/2 stream) of the pool.
    total: the whole request, redirects, auth round trips and retries included.
    """

    connect: float | None = 5.0
    read: float | None = 30.0
    write: float | None = 30.0
    pool: float | None = 30.0
    total: float | None = None

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """A Timeout from a Timeout, a number of seconds for every phase, or None (no limit)."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None, None, None, None)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            seconds = float(value)
            return cls(seconds, seconds, seconds, seconds, None)
        raise ValueError(f"timeout must be a Timeout, a positive number or None, not {value!r}")


@dataclass(frozen=True, slots=True)
class Limits:
    """How much the Client holds open.

    max_connections_per_origin: connections to one scheme://host:port.
    max_streams_per_connection: HTTP/2 streams per connection (None: the peer's
        MAX_CONCURRENT_STREAMS); beyond it the pool opens another connection.
    keepalive_expiry: seconds an idle connection is kept.
    max_header_size: bytes of a response's status line and header fields (715 beyond).
    pipelining: HTTP/1.1 requests sent on one connection before the previous answers
        (1: no pipelining).
    """

    max_connections_per_origin: int = 100
    max_streams_per_connection: int | None = None
    keepalive_expiry: float = 15.0
    max_header_size: int = 65536
    pipelining: int = 1

    def __post_init__(self) -> None:
        if self.max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        if self.max_streams_per_connection is not None and self.max_streams_per_connection < 1:
            raise ValueError("max_streams_per_connection must be at least 1 or None")
        if self.pipelining < 1:
            raise ValueError("pipelining must be at least 1")
