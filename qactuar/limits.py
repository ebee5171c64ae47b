"""The limits and timeouts one server applies to its clients, read once from the Config.

`ServerState` builds one `Limits` per serving process; every protocol and the
ASGI side read limits from it (`state.limits.max_body_size`), never from the
Config, so a limit is read the same way everywhere.  Compiled (limits.pxd) its
fields are C struct members.  This module holds numbers only: the checks that
use them live with the protocol (what only a protocol can see, such as a head
still arriving) and in `asgi/request_head.py` (what every request head shares).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qactuar.config import Config


class Limits:
    """Request size limits (bytes; 0 for none where the setting allows), timeouts
    (seconds) and flow limits of one server, copied out of its Config."""

    __slots__ = ("h2_max_concurrent_streams", "header_timeout", "keep_alive_timeout",
                 "limit_concurrency", "max_body_size", "max_header_count", "max_header_size",
                 "max_url_size", "recv_bytes", "request_timeout", "send_timeout", "ws_max_size")

    def __init__(self, config: Config) -> None:
        self.max_url_size = config.MAX_URL_SIZE  # request target: 414 beyond
        self.max_header_size = config.MAX_HEADER_SIZE  # the header fields together: 431
        self.max_header_count = config.MAX_HEADER_COUNT  # header fields: 431
        self.max_body_size = config.MAX_BODY_SIZE  # request body: 413 (0: no limit)
        self.recv_bytes = config.RECV_BYTES  # body buffered for an app before reading pauses
        self.limit_concurrency = config.LIMIT_CONCURRENCY  # responses at once: 503 (0: none)
        self.h2_max_concurrent_streams = config.H2_MAX_CONCURRENT_STREAMS
        self.ws_max_size = config.WS_MAX_SIZE  # a WebSocket message
        self.header_timeout = float(config.HEADER_TIMEOUT)  # to send a request head
        self.keep_alive_timeout = float(config.KEEP_ALIVE_TIMEOUT)  # idle between requests
        self.request_timeout = float(config.REQUEST_TIMEOUT)  # for an app to start answering
        self.send_timeout = float(config.SEND_TIMEOUT)  # a client not reading our answer

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Limits({fields})"
