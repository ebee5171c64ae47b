"""HTTP/1.1 on one connection: httptools parsing, keep-alive, pipelining, framing.

Owns the bytes: request heads are parsed and checked here (strictly: any
smuggling shape is a 400 and the connection is closed), bodies are handed to
the request's `HTTPStream`, and the stream's response is framed here
(Content-Length, chunked, or close-delimited for HTTP/1.0).  Requests on one
connection are answered in order: a pipelined request waits, its body
buffered, until the one before it has been answered.

Timeouts cost one timer entry per connection, not one per request: the
connection keeps two deadlines (what the client owes: a request head, the rest
of a body or the next request; what the app owes: the start of its response)
and one entry in its server's deadlines (protocols/deadlines.py: one loop timer
for every connection), armed lazily at the earliest of them and re-armed when
it fires early.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import httptools

from qactuar.asgi import file_body
from qactuar.asgi.http_stream import HTTPStream, ResponseSink, error_headers
from qactuar.asgi.request_head import RefusedRequest, request_scope
from qactuar.logs import exception_logger, server_logger
from qactuar.protocols import handover, http1_enabled, http2_enabled
from qactuar.protocols.deadlines import TIMER_SLACK
from qactuar.protocols.write_waiters import WriteWaiters
from qactuar.protocols.ws_handshake import handshake_problem, wants_websocket
from qactuar.proxy_headers import FORWARDED_FIELDS
from qactuar.sockets import tls_scope_extension

if TYPE_CHECKING:
    from qactuar.limits import Limits
    from qactuar.server_state import ServerState

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Content-Length lines by size: formatting one costs more than a lookup, and
# apps answer with the same few sizes over and over.
_LENGTH_LINES: dict[int, bytes] = {}
# Response header lines by (name, value) pair: apps send the same few pairs over
# and over.  One line per pair joins faster than four parts; bounded, never
# evicting, so pairs with ever new values cannot grow it.
_HEADER_LINES: dict[tuple[bytes, bytes], bytes] = {}
_HEADER_LINES_LIMIT = 1024
_HEADER_LINE_SIZE = 260
# Between requests the protocol holds no header list (on_header fills a new one
# per request and never appends outside a request head).
_NO_HEADERS: list[tuple[bytes, bytes]] = []
_FILE_EXTENSIONS = file_body.advertise({})  # http.response.pathsend and zerocopysend
# Body parts gathered for one write are written at once beyond this size,
# so the transport's back-pressure still sees them.
_GATHER_LIMIT = 64 * 1024
# Request headers the protocol acts on.
_HOST, _CONNECTION, _TRANSFER_ENCODING, _CONTENT_LENGTH, _EXPECT, _FORWARDED, _UPGRADE = range(7)
_REQUEST_HEADER_KINDS = {b"host": _HOST, b"connection": _CONNECTION,
                         b"transfer-encoding": _TRANSFER_ENCODING,
                         b"content-length": _CONTENT_LENGTH, b"expect": _EXPECT,
                         # llhttp upgrades only with an Upgrade field (CONNECT is refused):
                         # without one, should_upgrade() is not asked.
                         b"upgrade": _UPGRADE,
                         # Noted so request_scope looks for proxy fields only when sent.
                         **dict.fromkeys(FORWARDED_FIELDS, _FORWARDED)}
# Field names as sent -> (lowercased name, kind): clients send the same few
# names in the same case, so each is lowercased once and shared by every
# request's header list.  Bounded, as names are the client's to choose.
_FIELD_NAMES: dict[bytes, tuple[bytes, int | None]] = {}
_FIELD_NAMES_LIMIT = 512
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}


# Parsers of idle keep-alive connections, given back for the next connection that
# has bytes to parse (see _ParserTarget).  LIFO, so a busy server reuses a warm one;
# bounded, as it only needs as many as connections are mid-request at once.
_PARSER_POOL: list = []
_PARSER_POOL_LIMIT = 256
# A connection keeps its parser from one request to the next (taking and giving
# it back per request cost about 3 % of a hello-world request).  Every connection
# holding one is listed in its server's `parser_holders`; it gives the parser back
# once it has parsed nothing for a whole sweep interval (seconds), or at once when
# a connection with bytes to parse finds the pool empty (the oldest idle holder's,
# looking at no more than _TAKE_TRIES of them).
PARSER_SWEEP_INTERVAL = 1.0
_TAKE_TRIES = 4


# The parse phase of a connection (HTTP1Protocol._phase): what the next bytes are.
# C ints when compiled (http1.pxd).
_IDLE, _HEAD, _BODY, _STOPPED = range(4)
PARSE_PHASES = ("idle between requests", "reading a request head", "reading a request body",
                "stopped")


class StopParsing(Exception):
    """Raised inside a parser callback: nothing after this point is parsed, and nothing
    is answered for it (a request that closes the connection has been read whole).

    A refusal, which answers with a status, is `RefusedRequest` instead."""


class _Request(HTTPStream):
    """A request's ASGI stream plus what HTTP/1.1 remembers about it until it is answered.

    A subclass rather than a wrapper object: one allocation per request, not two.
    The fields are set by the protocol right after construction.
    """

    __slots__ = ("continue_sent", "expect_continue", "head_only", "http10", "keep_alive",
                 "message_complete")

    continue_sent: bool
    expect_continue: bool
    head_only: bool
    http10: bool
    keep_alive: bool
    message_complete: bool


class _ParserTarget:
    """What an httptools parser calls back: forwards each call to the connection it
    parses for now (`conn`).

    httptools binds a parser to the object it is made with, for its life.  With
    this object in between, a keep-alive connection that stays idle gives its
    parser back (`_PARSER_POOL`) and takes one when bytes arrive: an idle
    connection holds no parser (about 850 bytes: the parser, llhttp's state
    and settings, five bound callbacks).  Compiled, each forward is a C call.
    """

    __slots__ = ("conn", "parser")

    def __init__(self) -> None:
        self.conn: HTTP1Protocol | None = None
        self.parser: Any = httptools.HttpRequestParser(self)

    def on_url(self, url: bytes) -> None:
        self.conn.on_url(url)  # type: ignore[union-attr]  # set while it parses

    def on_header(self, name: bytes, value: bytes) -> None:
        self.conn.on_header(name, value)  # type: ignore[union-attr]

    def on_headers_complete(self) -> None:
        self.conn.on_headers_complete()  # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self.conn.on_body(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        self.conn.on_message_complete()  # type: ignore[union-attr]


# How long a connection that has sent nothing yet may take to send its first
# request once the server shuts down.
FIRST_REQUEST_GRACE = 0.5


class HTTP1Protocol(ResponseSink):
    """One client connection; also the `ResponseSink` of the request being answered.

    An asyncio protocol by its methods, not by subclassing `asyncio.Protocol`:
    compiled (http1.pxd) it is an extension type, whose base must be one too.
    """

    # Slots: an idle keep-alive connection then costs no instance dict.
    __slots__ = (
        "_answer_deadline", "_body_in_feed", "_body_received", "_chunked", "_client_deadline",
        "_closed", "_completed_in_feed", "_connection_tokens", "_content_length",
        "_deferred_error", "_expect", "_feeding", "_forwarded", "_framing_bytes",
        "_h2c_upgrade", "_head_bytes", "_header_bytes", "_headers", "_host_count", "_host_value",
        "_limits", "_no_body", "_opening", "_parsed_since_sweep", "_parser_target", "_parsing",
        "_phase", "_queue",
        "_reading_paused", "_scheme",
        "_timed_stream", "_timer", "_timer_at", "_tls", "_transfer_encoding", "_unsent",
        "_unsent_size", "_upgrade_body_left", "_upgrade_field", "_url", "_websocket",
        "_websocket_rest",
        "_write_waiters", "client", "config", "loop", "parser", "server", "state", "transport",
        "writing_paused",
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.loop = state.loop
        self.transport: asyncio.Transport | None = None
        # Taken from _PARSER_POOL when bytes arrive, given back once idle (see
        # PARSER_SWEEP_INTERVAL).
        self.parser: Any = None
        self._parser_target: _ParserTarget | None = None
        self._parsed_since_sweep = False  # a request began since the last parser sweep
        self._feeding = False  # inside parser.feed_data: the parser is in use
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self._scheme = state.scheme  # https behind a PROXY v2 header with the TLS flag
        self._forwarded = False  # the head being parsed has a proxy field (proxy_headers.py)
        self.writing_paused = False
        # Made when a send() first has to wait: most connections never need one.
        self._write_waiters: WriteWaiters | None = None
        self._reading_paused = False
        self._closed = False
        self._phase = _IDLE
        # The first bytes while they may be the HTTP/2 preface (h2c with prior
        # knowledge); None once they cannot (RFC 9113 3.4: it comes first or never).
        self._opening: bytes | None = b"" if http2_enabled(self.config.HTTP2) else None
        self._deferred_error: tuple[int, str, bytes, bool] | None = None
        # Its entry in the server's deadlines (protocols/deadlines.py), due at _timer_at.
        self._timer: list[Any] | None = None
        self._timer_at = 0.0
        self._client_deadline = 0.0  # 0: the client owes nothing by any time
        self._answer_deadline = 0.0  # 0: no app is timed (REQUEST_TIMEOUT)
        self._timed_stream: HTTPStream | None = None  # the stream _answer_deadline is for
        self._limits: Limits = state.limits
        # Requests in answer order; a list, not a deque: it holds one or two, and
        # an empty deque costs ten times the memory of an empty list (idle
        # keep-alive connections each keep one).
        self._queue: list[_Request] = []
        self._parsing: _Request | None = None
        # Response framing of the request being answered.
        self._chunked = False
        self._no_body = False
        self._unsent: list[bytes] | None = None  # body parts gathered for one write
        self._unsent_size = 0
        # The request head being parsed.
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = _NO_HEADERS
        self._header_bytes = 0
        self._host_count = 0
        self._host_value: bytes | None = None
        self._connection_tokens = b""
        self._transfer_encoding: bytes | None = None
        self._content_length: int | None = None
        self._expect: bytes | None = None
        self._upgrade_field = False  # the head being parsed has an Upgrade field
        self._body_received = 0
        self._head_bytes = 0  # bytes of a request head still unfinished
        self._completed_in_feed = False
        self._body_in_feed = False
        self._framing_bytes = 0  # bytes since the last body byte: chunk framing, trailers
        # A WebSocket handshake to hand over: (http scope, app) and the bytes after its head.
        self._websocket: tuple[dict[str, Any], Any] | None = None
        self._websocket_rest: bytearray | None = None
        self._tls: dict[str, Any] | None = None  # the ASGI `tls` scope extension
        # An h2c upgrade to make once the request head is read: (HTTP2-Settings, the request
        # as HTTP/2 header fields).
        self._h2c_upgrade: tuple[bytes, list[tuple[bytes, bytes]]] | None = None
        self._upgrade_body_left = 0  # body bytes still due after an Upgrade we did not take

    @property
    def parse_phase(self) -> str:
        """What the connection's next bytes are (one of PARSE_PHASES)."""
        return PARSE_PHASES[self._phase]

    # -- connection events ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        # (host, port) with the host string interned: each peername is a new
        # string, and idle connections from one address (a proxy, a few
        # clients) would each hold a copy (about 60 bytes).
        if isinstance(peer, tuple):
            self.client = (sys.intern(peer[0]), peer[1])
        else:
            self.client = None
        self.server = self.state.server_address(sock) if isinstance(sock, tuple) else None
        self.begin(transport)

    def begin(self, transport: asyncio.BaseTransport) -> None:
        """Serve the connection, `client` and `server` set (by connection_made, or from
        a PROXY header: proxy_protocol.py)."""
        self.transport = transport  # type: ignore[assignment]  # always a stream transport
        if self.state.scheme == "https" and self._tls_made(transport):
            return  # handed over to HTTP/2
        if not http1_enabled(self.config.HTTP2):
            self._switch_to_http2(b"")  # HTTP2 = only: whatever comes is HTTP/2's to read
            return
        self.state.connections.add(self)
        self._client_must_send_within(self._limits.header_timeout)

    def _tls_made(self, transport: asyncio.BaseTransport) -> bool:
        """Note the TLS facts for the scope; hand over to HTTP/2 if ALPN chose h2."""
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return False
        self._tls = tls_scope_extension(ssl_object)
        if handover.alpn_chose_h2(ssl_object, self.config.HTTP2):
            self._switch_to_http2(b"")
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._release_parser()
        self.state.connections.discard(self)
        if self.state.observer is not None:
            self.state.observer.connection_closed()
        self._client_deadline = 0.0
        if not self._answer_deadline:  # else the timer still has an app to time
            self._cancel_timer()
        for pending in self._queue:
            pending.client_gone()
        self._queue.clear()
        if self._parsing is not None:
            self._parsing.client_gone()
            self._parsing = None
        if self._write_waiters is not None:
            self._write_waiters.release()

    def _release_parser(self) -> None:
        """Drop the parser once this protocol is done with the connection.

        The parser and its target refer to each other, and the target to us:
        breaking that here frees a closed connection at once instead of
        leaving it to the garbage collector.  Never called from inside a
        parser callback; nothing parses after it.
        """
        target = self._parser_target
        if target is not None:
            self._parser_target = None
            self.parser = None
            target.conn = None
            target.parser = None
            holders: dict = self.state.parser_holders
            holders.pop(self, None)

    def _take_parser(self) -> Any:
        """A parser for the bytes that just arrived: a pooled one, an idle
        connection's, or a new one.  The connection keeps it across requests."""
        try:
            target: _ParserTarget = _PARSER_POOL.pop()
        except IndexError:
            target = self._idle_holders_parser()
        target.conn = self
        self._parser_target = target
        self.parser = parser = target.parser
        state = self.state
        holders: dict = state.parser_holders
        holders[self] = None
        if state.parser_sweep is None:
            _arm_parser_sweep(state)
        return parser

    def _idle_holders_parser(self) -> _ParserTarget:
        """The pool is empty: the parser of the connection idle longest, if it is
        idle at a message boundary (it gives it back), else a new parser."""
        holders: dict = self.state.parser_holders
        holder: HTTP1Protocol
        for _ in range(_TAKE_TRIES):
            if not holders:
                break
            holder = next(iter(holders))
            holder._give_back_parser()
            if _PARSER_POOL:
                return _PARSER_POOL.pop()
            del holders[holder]  # busy: looked at again last
            holders[holder] = None
        return _ParserTarget()

    def _give_back_parser(self) -> None:
        """Idle between requests: the parser waits in the pool, not on this connection.

        Only at a message boundary the parser itself expects more messages
        after (llhttp's keep-alive), so the next connection's parser starts
        exactly as a new one would.
        """
        target = self._parser_target
        if (target is None or self._feeding or self._phase != _IDLE or self._queue
                or self._parsing is not None or not self.parser.should_keep_alive()):
            return
        self._parser_target = None
        self.parser = None
        target.conn = None
        holders: dict = self.state.parser_holders
        holders.pop(self, None)
        if len(_PARSER_POOL) < _PARSER_POOL_LIMIT:
            _PARSER_POOL.append(target)
        else:
            target.parser = None  # the parser's bound callbacks refer back to it

    def eof_received(self) -> bool | None:
        # Half-closed by the client: answer the requests it completed, then close.
        if self._parsing is not None:
            return None  # a request body was cut short: nothing to answer
        if not self._queue:
            return None
        self._phase = _STOPPED
        for pending in self._queue:
            pending.keep_alive = False
            pending.client_done_sending()
        return True

    def data_received(self, data: bytes) -> None:
        if self._websocket_rest is not None:
            self._websocket_rest += data  # waits for earlier answers, then the WebSocket
            return
        if self._upgrade_body_left:
            self._read_body_after_upgrade(data)
            return
        if self._phase == _STOPPED:
            return
        if self._opening is not None:
            # The connection's first bytes: held while they may be the HTTP/2 preface.
            opening = self._opening + data
            if handover.opens_with_preface(opening):
                self._opening = None
                self._switch_to_http2(opening)  # h2c with prior knowledge
                return
            if handover.may_be_preface(opening):
                self._opening = opening  # a part of it: wait for the rest
                return
            self._opening = None
            data = opening
        parser = self.parser
        if parser is None:
            if self._closed:
                return
            parser = self._take_parser()
        continuing_head = self._phase == _HEAD
        continuing_body = self._parsing is not None and not continuing_head
        self._completed_in_feed = False
        self._body_in_feed = False
        self._feeding = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._feeding = False
            if self._h2c_upgrade is not None:
                self._switch_to_h2c(data[upgrade.args[0]:])
                return
            if self._websocket is not None:
                self._websocket_rest = bytearray(data[upgrade.args[0]:])
                if self._queue:
                    self._pause_reading()  # earlier pipelined answers go first
                else:
                    self._switch_to_websocket()
                return
            if self._upgrade_body_left:
                self._read_body_after_upgrade(data[upgrade.args[0]:])
                return
            # Not a WebSocket (or WS is off): the request was served as plain HTTP;
            # whatever follows is not HTTP/1.1, so the connection ends after it.
            self._phase = _STOPPED
            if self._queue:
                self._queue[-1].keep_alive = False
        except httptools.HttpParserError as exc:
            self._feeding = False
            # Handled in a method of its own: a local here holding the callback's
            # exception would tie this frame and that exception's traceback into
            # a reference cycle, left for the garbage collector once per closed
            # connection (every Connection: close request ends this way).
            self._parse_failed(exc)
            return
        self._feeding = False
        if self._phase == _HEAD:
            if not self._client_deadline and not self._reading_paused:
                self._client_must_send_within(self._limits.header_timeout)
            self._count_unfinished_head(len(data), continuing_head)
        elif continuing_body and self._parsing is not None and not self._body_in_feed:
            self._count_body_framing(len(data))

    def _parse_failed(self, exc: httptools.HttpParserError) -> None:
        cause = exc.__context__
        if isinstance(cause, StopParsing):
            self._stop()  # no answer: the connection just stops here
        elif isinstance(cause, RefusedRequest):
            self._reject(cause.status, cause.reason, cause.extra_head, self._head_request())
        elif cause is not None:
            # A bug of ours in a parser callback, not the client's mistake.
            exception_logger.error("error while handling a request head (%s)", self.parse_phase,
                                   exc_info=cause)
            self._reject(500, "Internal Server Error", head_only=self._head_request())
        else:
            reason = str(exc) or type(exc).__name__
            status = 505 if "HTTP version" in reason else 400
            self._reject(status, reason, head_only=self._head_request())

    def _head_request(self) -> bool:
        """Whether the request being refused is a HEAD (its answer then has no body).

        Only once this request's method is read (its URL has begun: phase HEAD
        or BODY): before that, llhttp still reports the method of the request
        before it, or the HEAD it was matching in `HEADX` or `HEAD/`.
        """
        return ((self._phase == _HEAD or self._phase == _BODY)
                and self.parser.get_method() == b"HEAD")

    def _count_unfinished_head(self, size: int, continuing: bool) -> None:
        """Bound a request head that does not end (httptools buffers it whole).

        A chunk that also finished an earlier request is not counted, since
        part of it was not head; that undercounts by at most one read.
        """
        if continuing or not self._completed_in_feed:
            self._head_bytes += size
        limit = self._limits.max_url_size + self._limits.max_header_size + 1024
        if self._head_bytes > limit:
            self._reject(431, "Request Header Fields Too Large")

    def _count_body_framing(self, size: int) -> None:
        """Bound what a body sends that is not body: chunk framing and trailers.

        httptools buffers an unfinished trailer field whole, so a trailer that
        never ends would otherwise grow without limit.
        """
        self._framing_bytes += size
        if self._framing_bytes > self._limits.max_header_size + 1024:
            self._reject(431, "Request Header Fields Too Large: trailer section too large")

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self._write_waiters is not None:
            self._write_waiters.release()
        self._resume_reading()

    # -- parser callbacks ----------------------------------------------------

    def on_url(self, url: bytes) -> None:
        if self._phase == _HEAD:  # the rest of a URL split across reads
            self._url += url
            if len(self._url) > self._limits.max_url_size:
                raise RefusedRequest(414, "URI Too Long")
            return
        # A new request head.  (No on_message_begin callback: a request line
        # always reaches its URL, and one call per request fewer is worth it.)
        self._phase = _HEAD
        self._parsed_since_sweep = True
        self._head_bytes = 0
        self._url = url
        if len(url) > self._limits.max_url_size:
            raise RefusedRequest(414, "URI Too Long")
        self._headers = []
        self._header_bytes = 0
        self._host_count = 0
        self._host_value = None
        self._connection_tokens = b""
        self._transfer_encoding = None
        self._content_length = None
        self._expect = None
        self._upgrade_field = False
        self._body_received = 0
        self._framing_bytes = 0
        # HEADER_TIMEOUT starts only if the head is still unfinished when this
        # read is parsed (data_received): most heads arrive whole.
        self._client_deadline = 0.0

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self._header_bytes + len(name) + len(value) + 4
        if size > self._limits.max_header_size:
            raise RefusedRequest(431, "Request Header Fields Too Large")
        self._header_bytes = size
        if self._phase != _HEAD:
            return  # a trailer field of a chunked body: counted, never merged into headers
        # Typed locals: compiled, these are a C dict look-up and a C tuple unpack.
        names: dict = _FIELD_NAMES
        known: tuple = names.get(name) or _field_name(name)
        name, kind = known
        if kind is not None:
            if kind == _HOST:
                self._host_count += 1
                self._host_value = value
            elif kind == _CONNECTION:
                self._connection_tokens += b"," + value.lower()
            elif kind == _TRANSFER_ENCODING:
                if self._transfer_encoding is not None:
                    raise RefusedRequest(400, "Bad Request: repeated Transfer-Encoding")
                self._transfer_encoding = value.strip().lower()
            elif kind == _CONTENT_LENGTH:
                self._content_length = int(value)  # the parser has checked its digits
            elif kind == _FORWARDED:
                self._forwarded = True
            elif kind == _UPGRADE:
                self._upgrade_field = True
            else:
                self._expect = value.strip().lower()
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._client_deadline = 0.0
        parser = self.parser
        # llhttp only accepts versions 0.9, 1.0, 1.1 and 2.0, and keeps a
        # connection alive by default only for 1.1: with no Connection field
        # that answers the version without get_http_version formatting a string.
        if not self._connection_tokens and parser.should_keep_alive():
            version = "1.1"
        else:
            version = parser.get_http_version()
            if version != "1.1" and version != "1.0":
                raise RefusedRequest(505, "HTTP Version Not Supported")
        raw_method = parser.get_method()
        methods: dict = _METHODS
        method = methods.get(raw_method) or raw_method.decode("ascii")
        if version == "1.1" and self._host_count != 1:
            raise RefusedRequest(400, "Bad Request: exactly one Host header is required")
        if self._transfer_encoding is not None:
            if version == "1.0":
                raise RefusedRequest(400, "Bad Request: Transfer-Encoding in an HTTP/1.0 "
                                          "request")
            if self._transfer_encoding != b"chunked":
                raise RefusedRequest(501, "Not Implemented: only the chunked transfer coding "
                                          "is supported")
        expect_continue = False
        if self._expect is not None:
            if self._expect != b"100-continue":
                raise RefusedRequest(417, "Expectation Failed")
            expect_continue = version == "1.1"
        state = self.state
        forwarded = self._forwarded
        if forwarded:
            self._forwarded = False  # reset here, not per request: most never set it
        # The scope's extensions: a dict per request (apps may write to it), copied
        # from the template of the file bodies HTTPStream sends; TLS's facts added.
        extensions: dict = _FILE_EXTENSIONS.copy()
        if self._tls is not None:
            extensions["tls"] = self._tls
        # The one entry to the ASGI side: limits, target, scope and app (may refuse).
        scope, app = request_scope(state, method, self._url, version, self._headers,
                                   self._host_value, self._content_length, self._scheme,
                                   self.client, self.server, extensions, forwarded)
        if self._connection_tokens or state.shutting_down:
            keep_alive = self._wants_keep_alive(version)
        else:
            keep_alive = version == "1.1" and self._limits.keep_alive_timeout > 0
        upgrade = self._upgrade_field and parser.should_upgrade()
        if upgrade and not self._queue and self._wants_h2c(method):
            return  # answered over HTTP/2 once the head is fully read
        if (upgrade and state.websocket and not state.shutting_down
                and wants_websocket(self._headers)):
            problem = handshake_problem(method, version, self._headers)
            if problem is not None:
                # RFC 6455 4.4: a refused handshake says which version we speak.
                raise RefusedRequest(400, problem, b"sec-websocket-version: 13\r\n")
            if self._limits.limit_concurrency and state.over_concurrency_limit():
                raise RefusedRequest(503, "Service Unavailable: the server is at its "
                                          "concurrency limit", b"retry-after: 1\r\n")
            self._websocket = (scope, app)
            return
        self._headers = _NO_HEADERS  # the scope has them; an idle connection keeps none
        request: _Request = _Request.__new__(_Request)  # see HTTPStream.setup
        request.setup(self, scope, app, state)
        request.keep_alive = keep_alive
        request.expect_continue = expect_continue
        request.continue_sent = False
        request.head_only = method == "HEAD"
        request.http10 = version == "1.0"
        request.message_complete = False
        self._parsing = request
        queue = self._queue
        queue.append(request)
        if len(queue) == 1:
            self._start_response_cycle(request)

    def on_body(self, body: bytes) -> None:
        pending = self._parsing
        if pending is None:
            return
        self._body_received += len(body)
        self._body_in_feed = True
        self._framing_bytes = 0
        if not self._queue:
            # Answered early; the rest of the body must keep coming or we close.
            self._client_must_send_within(self._limits.keep_alive_timeout
                                          or self._limits.header_timeout)
        limit = self._limits.max_body_size
        if limit and self._body_received > limit:
            raise RefusedRequest(413, "Content Too Large")
        pending.receive_body(body)
        if pending.buffered > self._limits.recv_bytes:  # the app is behind: stop reading
            self._pause_reading()

    def on_message_complete(self) -> None:
        pending = self._parsing
        if pending is None:
            self._phase = _IDLE
            return
        if ((self._content_length or self._transfer_encoding is not None)
                and self._upgrade_field and self.parser.should_upgrade()):
            # llhttp ends every Upgrade request at its head; one we did not take
            # still has its body to come.
            self._expect_body_after_upgrade(pending)
            return
        self._parsing = None
        self._phase = _IDLE
        self._completed_in_feed = True
        pending.message_complete = True
        pending.end_body()
        if not self._queue:
            # Answered before its body was in; the body is now read, so wait idle.
            self._client_must_send_within(self._limits.keep_alive_timeout)
        if not pending.keep_alive:
            # Nothing after a request that closes the connection is read.
            self._phase = _STOPPED
            raise StopParsing
        if len(self._queue) > 1:
            self._pause_reading()  # bound the pipeline: read more once answered

    def _expect_body_after_upgrade(self, request: _Request) -> None:
        """Read the body of an Upgrade request we did not take ourselves: the
        parser stopped at its head and will not parse the bytes that follow."""
        if self._transfer_encoding is not None:
            raise RefusedRequest(501, "Not Implemented: a chunked body in a request asking for an "
                               "Upgrade this server does not make")
        self._upgrade_body_left = self._content_length or 0
        request.keep_alive = False  # what follows the body is not read as HTTP/1.1

    def _read_body_after_upgrade(self, data: bytes) -> None:
        part = data[:self._upgrade_body_left]
        self._upgrade_body_left -= len(part)
        try:
            if part:
                self.on_body(part)
        except RefusedRequest as exc:
            self._upgrade_body_left = 0
            self._reject(exc.status, exc.reason)
            return
        if not self._upgrade_body_left:
            request, self._parsing = self._parsing, None
            self._phase = _STOPPED
            if request is not None:
                request.message_complete = True
                request.end_body()

    # -- the ResponseSink side (called by HTTPStream) --------------------------

    def send_head(self, stream: HTTPStream, body: bytes, end: bool) -> None:
        if self._closed or self.transport is None:
            return
        request: _Request = self._queue[0]  # the same object as `stream`, typed for HTTP/1.1
        state = self.state
        status = stream.status
        keep_alive = request.keep_alive and not stream.close_connection and not state.shutting_down
        no_body = request.head_only or status == 204 or status == 304
        chunked = False
        parts = [state.status_lines.get(status) or state.status_line(status)]
        lines: dict = _HEADER_LINES
        for pair in stream.headers:  # tuples of bytes (HTTPStream._accept_start)
            line = lines.get(pair)
            if line is None:
                name, value = pair
                line = b"%s: %s\r\n" % (name, value)
                if len(lines) < _HEADER_LINES_LIMIT and len(line) <= _HEADER_LINE_SIZE:
                    lines[pair] = line
            parts.append(line)
        if not stream.has_date and not stream.has_server:
            parts.append(state.date_and_server_lines)
        else:
            if not stream.has_date:
                parts.append(state.date_line)
            if not stream.has_server and state.server_header:
                parts.append(state.server_header)
            if state.alt_svc_line:
                parts.append(state.alt_svc_line)
        if not stream.has_length and status != 204 and status != 304:
            if end:
                if body or not request.head_only:
                    size = len(body)
                    length_lines: dict = _LENGTH_LINES
                    line = length_lines.get(size)
                    if line is None:
                        line = b"content-length: %d\r\n" % size
                        if len(length_lines) < 4096:
                            length_lines[size] = line
                    parts.append(line)
            elif not no_body:
                if request.http10:
                    keep_alive = False  # close-delimited body
                else:
                    chunked = True
                    parts.append(b"transfer-encoding: chunked\r\n")
        if not keep_alive:
            parts.append(b"connection: close\r\n\r\n")
        elif request.http10:
            parts.append(b"connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")
        request.keep_alive = keep_alive
        self._chunked = chunked
        self._no_body = no_body
        if not no_body:
            if chunked:
                if body:
                    parts.append(b"%x\r\n%s\r\n" % (len(body), body))
                if end:
                    parts.append(b"0\r\n\r\n")
            elif body:
                parts.append(body)
        data = b"".join(parts)
        unsent = self._unsent
        if end and state.in_flight > 1:
            # A whole response while others are being made: written with the
            # others of this loop pass (ServerState.write_at_pass_end), or with
            # the last response in flight, whichever comes first.  Bytes already
            # waiting here (a pipelined request's answer) have their write due.
            if unsent:
                unsent.append(data)
            else:
                self._unsent = [data]
                state.write_at_pass_end(self)
            return
        self._write_in_order(data)
        if end and state.pass_end_writers:
            # The last response in flight: the others waiting for it go now, not
            # after the loop's next poll.
            state.write_pass_end_now()

    def send_body(self, body: bytes, end: bool) -> None:
        if self._closed or self.transport is None or self._no_body:
            return
        unsent = self._unsent
        write_due = bool(unsent)  # bytes wait here: their write is scheduled already
        if unsent is None:
            self._unsent = unsent = []
        if self._chunked:
            if body:
                unsent += (b"%x\r\n" % len(body), body, b"\r\n")
            if end:
                unsent.append(b"0\r\n\r\n")
        elif body:
            unsent.append(body)
        if end:
            if write_due:
                pass  # written with what waits here
            elif self.state.in_flight > 1:
                self.state.write_at_pass_end(self)  # with this pass's other answers
            else:
                self._write_unsent()
                self.state.write_pass_end_now()  # the last in flight: the others go too
        elif body:
            # Body parts sent in one go (an app streaming without waiting) are
            # gathered and written once the app yields: one syscall, not one each.
            gathered = self._unsent_size
            self._unsent_size = gathered + len(body)
            if self._unsent_size >= _GATHER_LIMIT:
                self._write_unsent()
            elif not gathered:  # the first part since the last write
                self.loop.call_soon(self._write_unsent)

    def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """End a chunked body with trailer fields, if the client said it takes them
        (`TE: trailers`); otherwise (or for a body with a length) they are dropped."""
        if self._closed or self.transport is None or self._no_body:
            return
        if self._chunked:
            request = self._queue[0] if self._queue else None
            wanted = request is not None and any(
                name == b"te" and b"trailers" in value.lower()
                for name, value in request.scope["headers"])
            ending = [b"0\r\n"]
            if wanted:
                ending += [b"%s: %s\r\n" % pair for pair in headers]
            ending.append(b"\r\n")
            if self._unsent is None:
                self._unsent = []
            self._unsent.append(b"".join(ending))
        self._write_unsent()

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Not sent on HTTP/1.1 (early hints are advertised on HTTP/2 only)."""

    def push(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """HTTP/1.1 has no server push: dropped."""

    def _write_in_order(self, data: bytes) -> None:
        """Write `data` now, after any answer still waiting here (for the pass end)."""
        if self._unsent:
            self._write_unsent()
        self.transport.write(data)

    def _write_unsent(self) -> None:
        unsent = self._unsent
        if unsent:
            data = unsent[0] if len(unsent) == 1 else b"".join(unsent)
            self._unsent = None  # made again by the next streamed part: idle holds none
            self._unsent_size = 0
            if not self._closed and self.transport is not None:
                self.transport.write(data)

    def abort(self) -> None:
        self._phase = _STOPPED
        if self._queue:
            self._queue[0].keep_alive = False
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.abort()  # do not wait to flush what a failed response left

    def request_body(self) -> None:
        """The app waits for body bytes: ask the client for them."""
        if self._queue:
            pending: _Request = self._queue[0]
            if (pending.expect_continue and not pending.continue_sent
                    and not pending.response_started and not self._closed):
                pending.continue_sent = True
                self._write_in_order(CONTINUE_RESPONSE)
        self._resume_reading()

    def response_done(self, stream: HTTPStream) -> None:
        if not self._queue or self._queue[0] is not stream:
            return
        pending: _Request = self._queue.pop(0)
        self._answer_deadline = 0.0
        self._timed_stream = None
        if self._closed:
            return
        if not pending.message_complete and pending.expect_continue and not pending.continue_sent:
            pending.keep_alive = False  # the client may or may not send the body: close
        if not pending.keep_alive or self.state.shutting_down:
            self._close()
            return
        if not self._queue and self._websocket_rest is not None:
            self._switch_to_websocket()
            return
        if self._queue:
            self._start_response_cycle(self._queue[0])
        elif self._deferred_error is not None:
            self._write_error(*self._deferred_error)
            return
        elif self._phase != _HEAD:
            # Idle, or still owed the rest of a body answered early: either way
            # the client has KEEP_ALIVE_TIMEOUT to send something.  (Inlined
            # _client_must_send_within: this runs per request.)
            timeout = self._limits.keep_alive_timeout
            if timeout > 0:
                now: float = self.loop.time()  # a C double: one float object, not three
                self._client_deadline = deadline = now + timeout
                if self._timer is None or deadline < self._timer_at:
                    self._arm_timer(deadline)
            else:
                self._client_deadline = 0.0
        if self._reading_paused:
            self._resume_reading()

    def file_socket(self) -> int:
        """The socket for os.sendfile (qactuar/asgi/file_body.py): plain TCP and a body
        framed by Content-Length only; -1 otherwise (TLS, chunked, no body, closed)."""
        if (self._closed or self.transport is None or self._tls is not None
                or self._chunked or self._no_body):
            return -1
        if self._unsent:
            self._write_unsent()  # gathered body parts go before the file
        sock = self.transport.get_extra_info("socket")
        return -1 if sock is None else sock.fileno()

    def write_buffer_size(self) -> int:
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    async def wait_writable(self) -> None:
        if not self.writing_paused or self._closed:
            return
        if self._write_waiters is None:
            self._write_waiters = WriteWaiters()
        await self._write_waiters.wait(self.loop, self._limits.send_timeout,
                                       self._send_timed_out)

    def _send_timed_out(self) -> None:
        """SEND_TIMEOUT: the client has not read our answer for that long: close."""
        server_logger.info("%s stopped reading the response for %gs (SEND_TIMEOUT): "
                           "closing the connection", _peer(self.client),
                           self._limits.send_timeout)
        self.abort()

    # -- internals -------------------------------------------------------------

    def _start_response_cycle(self, stream: _Request) -> None:
        state = self.state
        limits = self._limits
        if limits.limit_concurrency and state.over_concurrency_limit():
            stream.app = state.unavailable_app
        if limits.request_timeout > 0:
            self._timed_stream = stream
            now: float = self.loop.time()  # a C double: one float object, not three
            self._answer_deadline = deadline = now + limits.request_timeout
            if self._timer is None or deadline < self._timer_at:
                self._arm_timer(deadline)
        stream.start(False)  # after this pass's reads: see EAGER_START in asgi/http_stream.py

    def _wants_keep_alive(self, version: str) -> bool:
        if self.state.shutting_down or self._limits.keep_alive_timeout == 0:
            return False
        tokens = {token.strip() for token in self._connection_tokens.split(b",")}
        if b"close" in tokens:
            return False
        return version == "1.1" or b"keep-alive" in tokens

    def _reject(self, status: int, reason: str, extra_head: bytes = b"",
                head_only: bool = False) -> None:
        """Answer a request the server refuses (bad or too large) and close."""
        self._stop()
        server_logger.info("%d %s from %s", status, reason, _peer(self.client))
        failed, self._parsing = self._parsing, None
        if failed is not None:
            # The request's head was fine, its body is not.
            if failed not in self._queue:
                self._close()  # it was answered already; nothing more to say
                return
            if self._queue[0] is failed:
                failed.keep_alive = False
                failed.reject(status, reason)
                return
            self._queue.pop()  # a pipelined request that never started
        if self._queue:
            # Earlier pipelined requests are answered first, in order.
            self._deferred_error = (status, reason, extra_head, head_only)
            return
        self._write_error(status, reason, extra_head, head_only)

    def _stop(self) -> None:
        """Parse nothing more on this connection; nothing is owed by the client either."""
        self._phase = _STOPPED
        self._client_deadline = 0.0

    def _write_error(self, status: int, reason: str, extra_head: bytes = b"",
                     head_only: bool = False) -> None:
        if self._closed or self.transport is None:
            return
        body = reason.encode() + b"\n"
        head = [self.state.status_line(status)]
        head.extend(b"%s: %s\r\n" % pair for pair in error_headers(body))
        head.append(extra_head)
        head.append(self.state.date_line)
        if self.state.server_header:
            head.append(self.state.server_header)
        head.append(b"connection: close\r\n\r\n")
        if not head_only:
            head.append(body)
        self._write_in_order(b"".join(head))
        self._close()

    def _client_too_slow(self) -> None:
        if self._phase == _HEAD:
            self._reject(408, "Request Timeout: the request head was not received in time")
        else:
            self._close()  # idle too long, or never sent a byte, or stalled a body

    # -- hand-overs (protocols/handover.py decides and makes them) -------------

    def _give_up_transport(self) -> asyncio.Transport:
        """This protocol is done with the connection: another one takes the transport."""
        transport = self.transport
        assert transport is not None
        if self._unsent:
            self._write_unsent()  # answers before the hand-over are this protocol's to write
        self._phase = _STOPPED
        self._closed = True
        self._release_parser()
        self._client_deadline = 0.0
        self._cancel_timer()
        self.state.connections.discard(self)
        return transport

    def _switch_to_websocket(self) -> None:
        """Give the transport to a WebSocket protocol with the bytes after the handshake."""
        assert self._websocket is not None
        (scope, app), self._websocket = self._websocket, None
        rest, self._websocket_rest = bytes(self._websocket_rest or b""), None
        reading_paused = self._reading_paused
        handover.to_websocket(self.state, self._give_up_transport(), scope, app, rest,
                              reading_paused)

    def _switch_to_http2(self, data: bytes,
                         upgrade: tuple[bytes, list[tuple[bytes, bytes]]] | None = None) -> None:
        """Give the transport to HTTP/2, with what the client sent that HTTP/2 must read."""
        handover.to_http2(self.state, self._give_up_transport(), self.client, self.server,
                          self._tls, data, upgrade)

    def _wants_h2c(self, method: str) -> bool:
        """An `Upgrade: h2c` we accept: then remember it, to make once the head is read."""
        if (self.state.scheme != "http" or self.state.shutting_down
                or not http2_enabled(self.config.HTTP2)):
            return False
        has_body = self._transfer_encoding is not None or bool(self._content_length)
        self._h2c_upgrade = handover.h2c_upgrade(method, self._url, self._headers, has_body)
        return self._h2c_upgrade is not None

    def _switch_to_h2c(self, rest: bytes) -> None:
        """Answer 101 and continue the connection (and this request, as stream 1) in HTTP/2."""
        assert self._h2c_upgrade is not None and self.transport is not None
        upgrade, self._h2c_upgrade = self._h2c_upgrade, None
        self._write_in_order(handover.H2C_SWITCHING)
        self._switch_to_http2(rest, upgrade)

    def shutdown(self) -> None:
        """Server shutdown: close now if idle between requests, else after the answer.

        A request still arriving is answered first.  A connection that has
        sent nothing yet was accepted just before the server stopped
        listening (a prefork reload, a SIGTERM under load): its request is
        most likely in flight, so it gets a moment before it is closed.
        """
        if self._queue:
            for pending in self._queue:
                pending.keep_alive = False
        elif self._phase == _HEAD:
            return  # answered with Connection: close (the server is shutting down)
        elif not self._url:  # every request sets _url: none has arrived yet
            self.loop.call_later(FIRST_REQUEST_GRACE, self._close_if_idle)
        else:
            self._close()

    def _close_if_idle(self) -> None:
        if not self._queue and self._phase != _HEAD:
            self._close()

    def _close(self) -> None:
        self._client_deadline = 0.0
        if self.transport is not None and not self._closed:
            self._write_unsent()
            self._closed = True
            self.transport.close()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None and not self._closed:
            self._reading_paused = True
            self.transport.pause_reading()
            if self._phase == _HEAD:
                self._client_deadline = 0.0  # a head held back by us is not a slow client

    def _resume_reading(self) -> None:
        """Read again unless the client is not reading our answers, answers are
        queued up, or the active app has not consumed the body it was given."""
        if not self._reading_paused or self.transport is None or self._closed:
            return
        if self.writing_paused or len(self._queue) > 1:
            return
        if self._queue and self._queue[0].buffered > self._limits.recv_bytes:
            return
        self._reading_paused = False
        self.transport.resume_reading()
        if self._phase == _HEAD:
            self._client_must_send_within(self._limits.header_timeout)

    def _client_must_send_within(self, timeout: float) -> None:
        """Close (or answer 408) unless the client sends what is due within `timeout`."""
        if timeout > 0:
            self._client_deadline = deadline = self.loop.time() + timeout
            self._arm_timer(deadline)
        else:
            self._client_deadline = 0.0

    def _arm_timer(self, deadline: float) -> None:
        deadlines = self.state.deadlines
        if self._timer is not None:
            if self._timer_at <= deadline:
                return  # it fires first and re-arms for whatever is then due
            deadlines.cancel(self._timer)
        self._timer_at = deadline
        self._timer = deadlines.add(deadline, self)

    def deadline_due(self) -> None:
        """The connection's timer (an entry in its server's deadlines) fired."""
        self._timer = None
        now = self.loop.time() + TIMER_SLACK
        if self._answer_deadline and now >= self._answer_deadline:
            self._answer_deadline = 0.0
            stream, self._timed_stream = self._timed_stream, None
            if stream is not None:
                stream.request_timed_out()
        if self._client_deadline and now >= self._client_deadline and not self._closed:
            self._client_deadline = 0.0
            self._client_too_slow()
        pending = [d for d in (self._answer_deadline, self._client_deadline) if d]
        if pending:
            self._arm_timer(min(pending))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self.state.deadlines.cancel(self._timer)
            self._timer = None


def _arm_parser_sweep(state: ServerState) -> None:
    state.parser_sweep = state.loop.call_later(PARSER_SWEEP_INTERVAL, _sweep_parsers, state,
                                               context=state.timer_context)


def _sweep_parsers(state: ServerState) -> None:
    """Connections that began no request since the last sweep give their parser back
    (if idle at a message boundary; one mid-request keeps it and is looked at again)."""
    state.parser_sweep = None
    holders: dict = state.parser_holders
    conn: HTTP1Protocol
    for conn in list(holders):
        if conn._parsed_since_sweep:
            conn._parsed_since_sweep = False
        else:
            conn._give_back_parser()
    if holders:
        _arm_parser_sweep(state)


def _field_name(name: bytes) -> tuple[bytes, int | None]:
    lowered = name.lower()
    known = (lowered, _REQUEST_HEADER_KINDS.get(lowered))
    if len(_FIELD_NAMES) < _FIELD_NAMES_LIMIT and len(name) <= 64:
        _FIELD_NAMES[name] = known
    return known


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"
