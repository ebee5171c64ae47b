"""What every connection of one serving process shares: settings, apps, caches, counters.

Kept apart from the protocols so HTTP/1.1, HTTP/2 and WebSocket read the same
limits, the same router and the same cached response fragments.

The interface a process model uses (models/): `in_flight` (responses started
and not complete: LIMIT_CONCURRENCY's count), `connections`, `tasks`,
`shutting_down`, `observer` (a `ServerObserver` told of each request and
closed connection; None in the async model, whose hot path then pays one
None check) and `protocols` (the `ProtocolFactory` of protocols/handover.py,
None for the default one).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from qactuar import __version__
from qactuar.asgi import ASGI_SPEC_VERSION
from qactuar.asgi.router import Router
from qactuar.config import Config
from qactuar.limits import Limits
from qactuar.logs import exception_logger
from qactuar.protocols.deadlines import Deadlines
from qactuar.proxy_headers import ProxyHeaders

if TYPE_CHECKING:
    from qactuar.protocols.handover import ProtocolFactory

SERVER_HEADER = f"server: qactuar/{__version__}\r\n".encode()


async def not_found_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b"Not Found: no application is mounted at this path\n"
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def unavailable_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b"Service Unavailable: the server is at its concurrency limit\n"
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": body})


def websocket_enabled(config: Config) -> bool:
    """WS: `on` serves WebSocket, `off` serves upgrade requests as plain HTTP.

    `auto` (the default, from when `websockets` was optional) means `on`: the
    package is a dependency, always installed.
    """
    return config.WS != "off"


# RFC 9110's IMF-fixdate names days and months in English whatever the process's locale
# (time.strftime's %a and %b follow it); email.utils.formatdate does the same but costs
# its package's imports at every start.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """The HTTP date of a Unix timestamp: "Sun, 06 Dec 2026 13:20:00 GMT"."""
    t = time.gmtime(timestamp)
    return (f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


class ServerObserver:
    """What a process model may watch of one serving process (`ServerState.observer`).

    Every method does nothing here; a model overrides what it needs (prefork
    counts finished requests for MAX_REQUESTS, postfork reports a request's
    progress to its parent and exits when its connection closes).  Called on
    the event loop, in the middle of serving: be quick and never raise.
    """

    def request_started(self) -> None:
        """An app started on a request (`in_flight` has gone up)."""

    def response_started(self) -> None:
        """A response head is about to be written (the app's, or a 500 for it)."""

    def request_finished(self) -> None:
        """A started request's response is complete, sent or cut (`in_flight` went down)."""

    def connection_closed(self) -> None:
        """A connection ended, in whichever protocol it was by then."""


class ServerState:
    not_found_app = staticmethod(not_found_app)
    unavailable_app = staticmethod(unavailable_app)

    def __init__(self, config: Config, router: Router, loop: asyncio.AbstractEventLoop,
                 scheme: str = "http", observer: ServerObserver | None = None,
                 protocols: ProtocolFactory | None = None) -> None:
        self.config = config
        self.router = router
        self.loop = loop
        self.scheme = scheme
        self.root_path = config.ROOT_PATH
        self.access_log = config.ACCESS_LOG
        self.server_header = SERVER_HEADER if config.SERVER_HEADER else b""
        # Every limit and timeout, read one way by every protocol (limits.py).
        self.limits = Limits(config)
        self.connections: set[Any] = set()
        # HTTP/1.1 connections holding an httptools parser, oldest first, and the
        # timer that takes back the idle ones' (protocols/http1.py, _sweep_parsers).
        self.parser_holders: dict[Any, None] = {}
        self.parser_sweep: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0  # responses started and not yet complete
        self.observer = observer
        self.protocols = protocols
        # The admin plane's per-process counters (qactuar/admin/stats.py), None when off:
        # the HTTP stream bumps them per response.
        self.stats: Any = None
        self.websocket = websocket_enabled(config)
        self.shutting_down = False
        # The context connection timers run in: an empty one of this server's own
        # (per state, as a context is entered by one thread at a time).  A timer
        # otherwise copies the context it is armed in, often an app's, which an
        # idle keep-alive connection would then hold, about 64 bytes each.
        self.timer_context = contextvars.Context()
        # Every HTTP/1.1 connection's deadline, as one loop timer (protocols/http1.py).
        self.deadlines = Deadlines(loop, self.timer_context)
        # HTTP/1.1 connections holding a whole response, to be written together once
        # this pass of the loop has run its ready tasks (write_at_pass_end).
        self.pass_end_writers: list[Any] = []
        # HTTP/1.1 requests whose apps start in this pass's ready callback
        # (asgi/http_stream.py, _start_pending), Python 3.12+.
        self.pending_starts: list[Any] = []
        # Forwarded / X-Forwarded-* from trusted peers (proxy_headers.py); None when off.
        self.proxy: ProxyHeaders | None = ProxyHeaders(config) if config.PROXY_HEADERS else None
        self._server_addresses: dict[tuple[Any, ...], tuple[str, int]] = {}
        # Status lines by code, filled as codes are first used.
        self.status_lines: dict[int, bytes] = {}
        # The HTTP scope fields every request shares; each request copies it
        # and sets its own (the protocol's _build_scope).  The `asgi` dict is
        # shared too: apps read it, and a dict per request costs about 1 % of
        # a hello-world request.
        self.http_scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": ASGI_SPEC_VERSION},
            "http_version": "1.1", "method": None,
            "scheme": scheme, "path": None, "raw_path": None, "query_string": b"",
            "root_path": self.root_path, "headers": None, "client": None, "server": None,
            "extensions": None,
        }
        # The Date header line, refreshed every second by a timer rather than
        # formatted per response.
        self.date_line = b""
        self.date_and_server_lines = b""  # what most responses add: one part, not two
        # `alt-svc: h3=...` line with QUIC_BIND over TLS (set by qactuar/udp/serving.py).
        self.alt_svc_line = b""
        self.datagram_counters: Any = None  # QUIC_BIND/UDP_BINDS drops (udp/counters.py)
        self._refresh_date()

    def server_address(self, sockname: tuple[Any, ...]) -> tuple[str, int]:
        """The scope's `server` for a socket address, one shared tuple per address."""
        address = self._server_addresses.get(sockname)
        if address is None:
            address = self._server_addresses[sockname] = (str(sockname[0]), int(sockname[1]))
        return address

    def status_line(self, status: int) -> bytes:
        line = self.status_lines.get(status)
        if line is None:
            line = self.status_lines[status] = _status_line(status)
        return line

    def _refresh_date(self) -> None:
        now = time.time()
        self.date_line = b"date: " + http_date(now).encode() + b"\r\n"
        self.date_and_server_lines = self.date_line + self.server_header + self.alt_svc_line
        # Wake just after the next second starts, so the header is never a second stale.
        self.loop.call_later(1.0 - now % 1.0 + 0.001, self._refresh_date)

    def write_at_pass_end(self, connection: Any) -> None:
        """Call `connection._write_unsent()` once the tasks ready in this loop pass have run,
        or sooner: when the last response in flight is done (`write_pass_end_now`).

        A loaded server answers many requests per pass.  Written as each app
        finishes, its responses reach the client one every few tens of
        microseconds, each waking the client (and, for its next request, the
        server) on its own; written together, one wake-up serves them all.
        (docs/benchmarks.md, "Responses written per loop pass".)
        """
        writers = self.pass_end_writers
        if not writers:
            # Scheduled now, it runs after every handle already ready: the tasks
            # of this pass.  In the timers' context: none is copied per pass.
            self.loop.call_soon(self._write_pass_end, context=self.timer_context)
        writers.append(connection)

    def write_pass_end_now(self) -> None:
        """Write what waits for the pass end now (the last response due in it is done)."""
        if self.pass_end_writers:
            self._write_pass_end()

    def _write_pass_end(self) -> None:
        writers = self.pass_end_writers
        self.pass_end_writers = []
        for connection in writers:
            try:
                connection._write_unsent()
            except Exception:  # one connection's failure must not keep the others' answers
                exception_logger.exception("writing a connection's response failed")

    def over_concurrency_limit(self) -> bool:
        limit = self.limits.limit_concurrency
        return bool(limit) and self.in_flight >= limit
