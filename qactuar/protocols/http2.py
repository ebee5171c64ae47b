# cython: annotation_typing=False
"""HTTP/2 on one connection: requests on streams, responses within the windows, floods.

Owns the bytes and the frames: every request stream gets an `HTTPStream`
(the same ASGI cycle HTTP/1.1 drives) and a `_StreamSink` that turns what the
stream sends into HEADERS and DATA frames within the peer's flow-control
windows.  Request body bytes are acknowledged (WINDOW_UPDATE) only as the app
consumes them, so a slow app holds its client back instead of filling memory.
The frames themselves (states, windows, settings, HPACK) are `H2Connection`'s
(h2_connection.py), which calls this protocol's `on_*` methods.  This module
never builds ASGI messages.

A connection arrives here from `HTTP1Protocol`, which hands the transport
over when TLS negotiated `h2` (ALPN) or the client opened with the HTTP/2
preface (h2c with prior knowledge).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from qactuar.asgi import file_body
from qactuar.asgi.http_stream import HTTPStream, ResponseSink
from qactuar.asgi.request_head import RefusedRequest, refused_scope, request_scope
from qactuar.logs import exception_logger, server_logger
from qactuar.protocols import h2_websocket
from qactuar.protocols.h2_connection import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    INTERNAL_ERROR,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    H2Connection,
    H2ConnectionError,
    H2DenialOfService,
    StreamUnavailable,
)
from qactuar.protocols.h2_fields import (
    MalformedFields,
    RequestHead,
    check_trailers,
    read_request_head,
    response_fields,
)
from qactuar.protocols.write_waiters import WriteWaiters
from qactuar.server_state import SERVER_HEADER

if TYPE_CHECKING:
    from qactuar.server_state import ServerState

__all__ = ["PREFACE", "H2Protocol"]
_SERVER_VALUE = SERVER_HEADER[len(b"server: "):-2]
# Flood limits, per connection and per second: far above what a browser or a
# proxy sends, far below what the known HTTP/2 denial-of-service shapes need.
RESET_LIMIT = 100          # streams the client resets (CVE-2023-44487, rapid reset)
SETTINGS_LIMIT = 50        # SETTINGS frames
PING_LIMIT = 50            # PING frames
EMPTY_FRAME_LIMIT = 100    # DATA frames with no data that do not end their stream
_STATUS_BYTES = {code: str(code).encode() for code in range(100, 600)}
# The scope's extensions every stream offers, copied per request (apps may write to
# it).  The file bodies (pathsend, zerocopysend) cannot be sendfile'd into frames:
# file_body.py reads them in parts that flush_stream cuts into DATA frames within
# the windows and the frame size, holding at most one part per stream in memory.
_EXTENSIONS = file_body.advertise({"http.response.trailers": {},
                                   "http.response.early_hint": {}})


class _FloodMeter:
    """Counts one kind of frame per one-second window."""

    __slots__ = ("count", "limit", "window_start")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.window_start = 0.0

    def over(self, now: float) -> bool:
        if now - self.window_start >= 1.0:
            self.window_start = now
            self.count = 0
        self.count += 1
        return self.count > self.limit


class _StreamSink(ResponseSink):
    """The `ResponseSink` of one HTTP/2 stream: frames what its `HTTPStream` sends."""

    __slots__ = ("connection", "deadline", "ended", "head_only", "out", "out_end", "received",
                 "received_unacked", "request_ended", "stream", "stream_id", "trailers",
                 "waiters", "websocket")

    def __init__(self, connection: H2Protocol, stream_id: int, head_only: bool) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.head_only = head_only
        self.stream: HTTPStream | None = None
        self.out = bytearray()  # body bytes waiting for flow-control window
        self.out_end = False  # the response ends after `out`
        self.trailers: list[tuple[bytes, bytes]] | None = None  # sent after `out`
        self.ended = False  # END_STREAM (or RST_STREAM) sent: nothing more goes out
        self.request_ended = False
        self.received = 0  # body bytes received in all
        self.received_unacked = 0  # body bytes given to the stream, not yet acknowledged
        self.waiters: WriteWaiters | None = None  # made when a send() first has to wait
        self.deadline = 0.0  # when REQUEST_TIMEOUT is up for the app (0: not timed)
        self.websocket: Any = None  # an H2WebSocketProtocol on an extended CONNECT stream

    @property
    def writing_paused(self) -> bool:
        return bool(self.out) or self.connection.writing_paused

    def send_head(self, stream: HTTPStream, body: bytes, end: bool) -> None:
        self.connection.send_head(self, stream, body, end)

    def send_body(self, body: bytes, end: bool) -> None:
        if self.ended:
            return
        if not self.head_only and body:
            self.out += body
        if end:
            self.out_end = True
        self.connection.flush_stream(self)

    def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        if self.ended:
            return
        self.trailers = response_fields(headers)
        self.out_end = True
        self.connection.flush_stream(self)

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.connection.send_informational(self, status, headers)

    def push(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.connection.push(self, path, headers)

    def abort(self) -> None:
        self.connection.reset_stream(self, INTERNAL_ERROR)

    def request_body(self) -> None:
        """The app took body bytes or waits for more: open the window by what it consumed."""
        stream = self.stream
        consumed = self.received_unacked - (stream.buffered if stream is not None else 0)
        if consumed > 0:
            self.received_unacked -= consumed
            self.connection.acknowledge(self.stream_id, consumed)

    def response_done(self, stream: HTTPStream) -> None:
        self.deadline = 0.0
        self.connection.stream_finished(self)

    async def wait_writable(self) -> None:
        if not self.writing_paused or self.ended:
            return
        if self.waiters is None:
            self.waiters = WriteWaiters()
        connection = self.connection
        await self.waiters.wait(connection.loop, connection.state.limits.send_timeout,
                                self._send_timed_out)

    def _send_timed_out(self) -> None:
        """SEND_TIMEOUT: the client has not taken this stream's data for that long."""
        server_logger.info("%s stopped reading HTTP/2 stream %d for %gs (SEND_TIMEOUT): "
                           "resetting it", _peer(self.connection.client), self.stream_id,
                           self.connection.state.limits.send_timeout)
        if self.stream is not None:
            self.stream.client_gone()  # the app's send() raises, as for a client reset
        self.connection.reset_stream(self, CANCEL)

    def release_writers(self) -> None:
        if self.waiters is not None:
            self.waiters.release()


class H2Protocol:
    """One HTTP/2 connection, taken over from `HTTP1Protocol` (an asyncio protocol)."""

    def __init__(self, state: ServerState, transport: asyncio.Transport,
                 client: tuple[str, int] | None, server: tuple[str, int] | None,
                 extensions: dict[str, Any] | None) -> None:
        self.state = state
        self.config = state.config
        self.loop = state.loop
        self.transport: asyncio.Transport | None = transport
        self.client = client
        self.server = server
        self._tls = extensions  # the ASGI `tls` extension, or None without TLS
        self.writing_paused = False
        self._write_scheduled = False
        self._closed = False
        # The client's first bytes until its first frame's type is in (then None):
        # checked here to answer a wrong preface with its own log line (RFC 9113 3.4).
        self._opening: bytearray | None = bytearray()
        self._goaway_sent = False
        self._last_stream_id = 0
        self.sinks: dict[int, _StreamSink] = {}
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_deadline = 0.0  # loop time when an idle connection is closed
        # One timer for the REQUEST_TIMEOUT of every stream (not one per stream): it
        # fires at the earliest deadline and is set again for the next one.
        self._answer_timer: asyncio.TimerHandle | None = None
        self._push_allowed = True  # the client's SETTINGS_ENABLE_PUSH
        self._resets = _FloodMeter(RESET_LIMIT)
        self._settings = _FloodMeter(SETTINGS_LIMIT)
        self._pings = _FloodMeter(PING_LIMIT)
        self._empty_frames = _FloodMeter(EMPTY_FRAME_LIMIT)
        self.conn = H2Connection(self, state.limits.max_header_size,
                                 state.limits.h2_max_concurrent_streams, bool(state.websocket))

    def take_over(self, data: bytes,
                  upgrade: tuple[bytes, list[tuple[bytes, bytes]]] | None = None) -> None:
        """Start serving HTTP/2 on the transport; `data` is what the client sent so far.

        After an h2c upgrade, `upgrade` is the client's HTTP2-Settings and its
        request, which becomes stream 1 (RFC 7540 3.2).
        """
        self.state.connections.add(self)
        if upgrade is None:
            self.conn.initiate_connection()
            self._arm_idle_timer()
        else:
            settings, request = upgrade
            try:
                self.conn.initiate_upgrade(settings)
            except (H2ConnectionError, ValueError) as exc:
                self._protocol_failure(f"h2c upgrade with bad HTTP2-Settings ({exc})")
                return
            self._push_allowed = self.conn.enable_push
            try:
                self._start_stream(1, read_request_head(request), ended=True)
            except MalformedFields as exc:
                self._malformed(1, exc)
        self._write()
        if data:
            self.data_received(data)

    # -- connection events ---------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.state.connections.discard(self)
        if self.state.observer is not None:
            self.state.observer.connection_closed()
        self._cancel_timers()
        for sink in list(self.sinks.values()):
            stream = sink.stream
            sink.ended = True
            self._forget(sink)
            if stream is not None:
                stream.client_gone()
            sink.release_writers()

    def eof_received(self) -> bool | None:
        return None  # HTTP/2 has GOAWAY for ending; a half-close ends the connection

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        for sink in list(self.sinks.values()):
            if not sink.out:
                sink.release_writers()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._opening is not None and not self._settings_first(data):
            return
        try:
            self.conn.receive(data)
        except H2DenialOfService as exc:
            self._protocol_failure(f"denial-of-service shape ({exc})")
            return
        except H2ConnectionError as exc:
            self._protocol_failure(f"protocol error ({exc})")
            return
        except Exception as exc:  # a bug of ours: this connection ends, the server lives
            exception_logger.error("error while handling HTTP/2 frames", exc_info=exc)
            self._goaway_and_close(INTERNAL_ERROR)
            return
        self._write()

    def _settings_first(self, data: bytes) -> bool:
        """False (and the connection closed with GOAWAY) when the client's first bytes are
        not the preface, or the preface is not followed by SETTINGS."""
        opening = self._opening
        assert opening is not None
        opening += data[:len(PREFACE) + 4 - len(opening)]
        preface = opening[:len(PREFACE)]
        if preface != PREFACE[:len(preface)]:
            # h2 would raise without its GOAWAY: RFC 9113 3.4 asks for PROTOCOL_ERROR.
            server_logger.info("invalid HTTP/2 connection preface from %s: closing the "
                               "connection", _peer(self.client))
            self._opening = None
            self._goaway_and_close(PROTOCOL_ERROR)
            return False
        if len(opening) < len(PREFACE) + 4:
            return True  # the first frame's type is not in yet
        self._opening = None
        if opening[len(PREFACE) + 3] != 0x4:
            server_logger.warning("HTTP/2 connection preface not followed by SETTINGS from "
                                  "%s: closing the connection", _peer(self.client))
            self._goaway_and_close(PROTOCOL_ERROR)
            return False
        return True

    # -- what the client's frames mean (called by H2Connection) ------------------------

    def on_request(self, stream_id: int, fields: Any, ended: bool) -> None:
        if self._goaway_sent and stream_id > self._last_stream_id:
            self.conn.reset_stream(stream_id, REFUSED_STREAM)
            return
        try:
            head = read_request_head(fields)
        except MalformedFields as exc:
            self._malformed(stream_id, exc)
            return
        self._start_stream(stream_id, head, ended)

    def on_trailers(self, stream_id: int, fields: Any) -> None:
        try:
            check_trailers(fields)
        except MalformedFields as exc:
            self._malformed(stream_id, exc)
        else:
            self._on_request_end(stream_id)

    def on_stream_error(self, stream_id: int, problem: str) -> None:
        """H2Connection reset a stream the client broke a rule on: its app hears the
        client is gone.  Counted with the client's own resets (CVE-2025-8671)."""
        server_logger.info("HTTP/2 stream error from %s (stream %d): %s; stream reset",
                           _peer(self.client), stream_id, problem)
        self._on_reset(stream_id)
        if self._resets.over(self.loop.time()):
            self._flood("stream errors (resets provoked by the client)")

    def on_reset(self, stream_id: int, live: bool) -> None:
        """The client reset a stream (`live`: one still open)."""
        if live:
            self._on_reset(stream_id)
        if self._resets.over(self.loop.time()):
            self._flood("RST_STREAM frames (rapid reset)")

    def on_window_opened(self) -> None:
        self._flush_blocked()

    def on_settings(self) -> None:
        self._push_allowed = self.conn.enable_push
        self._flush_blocked()
        if self._settings.over(self.loop.time()):
            self._flood("SETTINGS frames")

    def on_ping(self) -> None:
        if self._pings.over(self.loop.time()):
            self._flood("PING frames")

    def on_goaway(self) -> None:
        self._close()

    # -- requests ------------------------------------------------------------------

    def _malformed(self, stream_id: int, problem: MalformedFields) -> None:
        """A malformed request (RFC 9113 8.1.1): a stream error, this stream only.

        Counted with the client's own resets: a reset the client provokes costs
        as much as one it sends (CVE-2025-8671, "MadeYouReset").
        """
        if self._resets.over(self.loop.time()):
            self._flood("malformed streams (resets provoked by the client)")
            return
        server_logger.info("HTTP/2 malformed request from %s (stream %d): %s; stream reset",
                           _peer(self.client), stream_id, problem)
        sink = self.sinks.get(stream_id)
        if sink is not None:
            if sink.stream is not None:
                sink.stream.client_gone()
            self.reset_stream(sink, PROTOCOL_ERROR)
            return
        self.conn.reset_stream(stream_id, PROTOCOL_ERROR)

    def _start_stream(self, stream_id: int, head: RequestHead, ended: bool) -> None:
        method, path, scheme, authority, protocol, headers, content_length = head
        sink = _StreamSink(self, stream_id, method == b"HEAD")
        self.sinks[stream_id] = sink
        if ended:
            sink.request_ended = True
        state = self.state
        websocket = (method == b"CONNECT" and protocol == b"websocket" and state.websocket
                     and not state.shutting_down)
        method_name = "GET" if websocket else method.decode("ascii", "replace")
        target = path or b""
        if authority is None:  # read_request_head made sure there is a host field
            authority = _host_of(headers)
        extensions: dict[str, Any] = _EXTENSIONS.copy()
        if self._push_allowed:
            extensions["http.response.push"] = {}
        if self._tls is not None:
            extensions["tls"] = self._tls
        problem: RefusedRequest | None = None
        try:
            scope, app = request_scope(
                state, method_name, target, "2", headers, authority, content_length,
                scheme.decode("ascii", "replace") if scheme else state.scheme,
                self.client, self.server, extensions)
        except RefusedRequest as refused:
            problem = refused
            scope = refused_scope(state, method_name, target, "2", headers, self.client,
                                  self.server)
            app = None
        if websocket and problem is None:
            bad = h2_websocket.handshake_problem(headers)
            if bad is not None:
                problem = RefusedRequest(400, bad)
            elif state.limits.limit_concurrency and state.over_concurrency_limit():
                problem = RefusedRequest(503, "Service Unavailable: the server is at its "
                                              "concurrency limit")
            else:
                self._start_websocket(sink, scope, app)
                return
        stream = HTTPStream.__new__(HTTPStream)  # see HTTPStream.setup
        stream.setup(sink, scope, app, state)
        sink.stream = stream
        if sink.request_ended:
            stream.end_body()
        if problem is not None:
            server_logger.info("%d %s from %s (HTTP/2 stream %d)", problem.status,
                               problem.reason, _peer(self.client), stream_id)
            stream.reject(problem.status, problem.reason)
            return
        limits = state.limits
        if limits.limit_concurrency and state.over_concurrency_limit():
            stream.app = state.unavailable_app
        if limits.request_timeout > 0:
            sink.deadline = deadline = self.loop.time() + limits.request_timeout
            if self._answer_timer is None:
                self._answer_timer = self.loop.call_at(deadline, self._answers_due)
        stream.start()

    def _answers_due(self) -> None:
        """REQUEST_TIMEOUT is up for the earliest timed stream(s); time the next one."""
        self._answer_timer = None
        if self._closed:
            return
        now = self.loop.time()
        next_deadline = 0.0
        for sink in list(self.sinks.values()):
            deadline = sink.deadline
            if not deadline:
                continue
            if deadline <= now:
                sink.deadline = 0.0
                if sink.stream is not None:
                    sink.stream.request_timed_out()
            elif not next_deadline or deadline < next_deadline:
                next_deadline = deadline
        if next_deadline and not self._closed:
            self._answer_timer = self.loop.call_at(next_deadline, self._answers_due)

    def _start_websocket(self, sink: _StreamSink, http_scope: dict[str, Any], app: Any) -> None:
        """RFC 8441: the stream carries one WebSocket, run by the same code as over HTTP/1.1."""
        sink.request_ended = False  # the client's side stays open for its frames
        websocket = h2_websocket.H2WebSocketProtocol(self.state, http_scope, app)
        transport = h2_websocket.StreamTransport(self, sink)
        websocket.stream_transport = transport
        sink.websocket = websocket
        websocket.take_over(transport, b"", False)

    def send_stream_headers(self, sink: _StreamSink, fields: list[tuple[bytes, bytes]],
                            end: bool) -> None:
        """Headers on a stream outside the HTTPStream cycle (a WebSocket's answer)."""
        if self._closed or sink.ended:
            return
        try:
            self.conn.send_headers(sink.stream_id, fields, end)
        except StreamUnavailable:
            sink.ended = True
            return
        if end:
            sink.ended = True
            self._end_of_response(sink)
        self._write()

    def on_data(self, stream_id: int, data: bytes, flow_length: int, ended: bool) -> None:
        if not data and not ended and self._empty_frames.over(self.loop.time()):
            self._flood("empty DATA frames")
            return
        self._on_data(stream_id, data, flow_length)
        if ended and not self._closed:
            self._on_request_end(stream_id)

    def _on_data(self, stream_id: int, data: bytes, flow_length: int) -> None:
        sink = self.sinks.get(stream_id)
        if sink is not None and sink.websocket is not None:
            transport = sink.websocket.stream_transport
            if transport.reading_paused:
                transport.unacknowledged += flow_length  # acknowledged when reading resumes
            else:
                self.acknowledge(stream_id, flow_length)
            sink.websocket.data_received(data)
            return
        stream = sink.stream if sink is not None else None
        if stream is None or stream.response_complete or sink is None:
            self.acknowledge(stream_id, flow_length)  # nobody reads it: let it flow
            return
        if flow_length > len(data):
            self.acknowledge(stream_id, flow_length - len(data))  # padding
        sink.received_unacked += len(data)
        sink.received += len(data)
        limit = self.state.limits.max_body_size
        if limit and sink.received > limit:
            server_logger.info("413 Content Too Large from %s (HTTP/2 stream %d)",
                               _peer(self.client), stream_id)
            stream.reject(413, "Content Too Large")
            return
        stream.receive_body(data)

    def _on_request_end(self, stream_id: int) -> None:
        sink = self.sinks.get(stream_id)
        if sink is None:
            return
        sink.request_ended = True
        if sink.stream is not None:
            sink.stream.end_body()
        if sink.websocket is not None:
            sink.websocket.eof_received()
        if sink.ended:
            self._forget(sink)

    def _on_reset(self, stream_id: int) -> None:
        sink = self.sinks.get(stream_id)
        if sink is None:
            return
        sink.ended = True
        stream = sink.stream
        self._forget(sink)
        if stream is not None:
            stream.client_gone()
        sink.release_writers()

    # -- the sending side (called by the stream sinks) --------------------------------

    def send_head(self, sink: _StreamSink, stream: HTTPStream, body: bytes, end: bool) -> None:
        if self._closed or sink.ended:
            return
        status = stream.status
        headers = [(b":status", _STATUS_BYTES[status]), *response_fields(stream.headers)]
        if not stream.has_date:
            headers.append((b"date", self.state.date_line[6:-2]))
        if not stream.has_server and self.state.server_header:
            headers.append((b"server", _SERVER_VALUE))
        if self.state.alt_svc_line:  # QUIC_BIND: where HTTP/3 is (udp/serving.py)
            headers.append((b"alt-svc", self.state.alt_svc_line[9:-2]))
        no_body = sink.head_only or status == 204 or status == 304
        if end and not stream.has_length and not no_body:
            headers.append((b"content-length", b"%d" % len(body)))
        if no_body:
            sink.head_only = True
            body = b""
        try:
            self.conn.send_headers(sink.stream_id, headers, end and not body)
        except StreamUnavailable:
            sink.ended = True  # the stream was closed by the client meanwhile
            return
        if end and not body:
            sink.ended = True
        else:
            sink.out += body
            sink.out_end = end
            self.flush_stream(sink, write=False)
        self._write()

    def send_informational(self, sink: _StreamSink, status: int,
                           headers: list[tuple[bytes, bytes]]) -> None:
        if self._closed or sink.ended:
            return
        with contextlib.suppress(StreamUnavailable):
            self.conn.send_headers(sink.stream_id, [(b":status", _STATUS_BYTES[status]),
                                                    *response_fields(headers)], False)
        self._write()

    def push(self, sink: _StreamSink, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Promise a GET of `path` on `sink`'s stream and answer it like a request."""
        if (self._closed or sink.ended or self._goaway_sent or sink.stream is None
                or not self.conn.enable_push):
            return
        scope = sink.stream.scope
        authority = next((value for name, value in scope["headers"] if name == b"host"), b"")
        request_headers = [(b":method", b"GET"), (b":path", path.encode()),
                           (b":scheme", scope["scheme"].encode()), (b":authority", authority),
                           *response_fields(headers)]
        try:
            head = read_request_head(request_headers)
        except MalformedFields as exc:
            server_logger.warning("push of %r not made: %s", path, exc)
            return
        try:
            promised = self.conn.push_promise(sink.stream_id, request_headers)
        except StreamUnavailable:
            return  # the client's stream limit, or the stream closed meanwhile: no push
        self._start_stream(promised, head, ended=True)
        self._write()

    def flush_stream(self, sink: _StreamSink, write: bool = True) -> None:
        """Send what the windows allow of `sink`'s body; end the stream once all is out."""
        if self._closed or sink.ended:
            return
        conn = self.conn
        stream_id = sink.stream_id
        out = sink.out
        try:
            while out:
                window = conn.send_window_of(stream_id)
                if window <= 0:
                    break
                size = min(window, conn.max_outbound_frame_size)
                if size >= len(out):
                    chunk = bytes(out)
                    out.clear()
                else:
                    chunk = bytes(out[:size])
                    del out[:size]
                last = sink.out_end and not out and sink.trailers is None
                conn.send_data(stream_id, chunk, last)
                if last:
                    sink.ended = True
            if not out and sink.out_end and not sink.ended:
                if sink.trailers is not None:
                    conn.send_headers(stream_id, sink.trailers, True)
                else:
                    conn.send_data(stream_id, b"", True)
                sink.ended = True
        except StreamUnavailable:
            sink.ended = True
            out.clear()
        if not out:
            sink.release_writers()
        if sink.ended and (sink.request_ended or sink.stream is None
                           or sink.stream.response_complete):
            self._end_of_response(sink)
        if write:
            self._write()

    def _end_of_response(self, sink: _StreamSink) -> None:
        if not sink.request_ended:
            # Answered before the request body was in: the rest is not wanted (RFC 9113 8.1).
            sink.request_ended = True
            self.conn.reset_stream(sink.stream_id, NO_ERROR)
        self._forget(sink)

    def reset_stream(self, sink: _StreamSink, code: int) -> None:
        if sink.ended:
            return
        sink.ended = True
        sink.request_ended = True
        sink.out.clear()
        self.conn.reset_stream(sink.stream_id, code)
        sink.release_writers()
        self._forget(sink)
        self._write()

    def stream_finished(self, sink: _StreamSink) -> None:
        """The app's response is complete (sent, or aborted)."""
        if sink.ended and not sink.out:
            self._end_of_response(sink)
        self._write()

    def acknowledge(self, stream_id: int, size: int) -> None:
        if self._closed or size <= 0:
            return
        self.conn.acknowledge(stream_id, size)
        self._write()

    def _flush_blocked(self) -> None:
        for sink in list(self.sinks.values()):
            if sink.out:
                self.flush_stream(sink, write=False)

    def _forget(self, sink: _StreamSink) -> None:
        """The stream is over for this connection: nothing more is sent or read on it."""
        if self.sinks.pop(sink.stream_id, None) is None:
            return
        if sink.received_unacked:
            # Body bytes never acknowledged (the app's last read asks for no more, or it
            # never read): they still hold the connection's window, so give them back, or
            # a connection's requests stall once their bodies add up to 64 KiB.
            self.acknowledge(0, sink.received_unacked)
            sink.received_unacked = 0
        # What was never sent is dropped now, and the sink and its HTTPStream stop
        # referring to each other: as a reference cycle they (and a body still
        # waiting for a window, megabytes for a client that went away) would
        # otherwise live until the cyclic garbage collector ran.
        sink.out.clear()
        sink.trailers = None
        sink.stream = None
        if sink.websocket is not None:
            sink.websocket.connection_lost(None)  # the stream is over, as a TCP close
        if not self.sinks:
            if self._goaway_sent:
                self.loop.call_soon(self._close)
            else:
                self._arm_idle_timer()

    # -- connection management ------------------------------------------------------

    def shutdown(self) -> None:
        """Server shutdown: GOAWAY now, let open streams finish, then close."""
        if self._closed or self._goaway_sent:
            return
        self._goaway_sent = True
        self._last_stream_id = self.conn.highest_inbound_stream_id
        self.conn.goaway(NO_ERROR, self._last_stream_id)
        self._write_now()
        if not self.sinks:
            self._close()

    def _flood(self, what: str) -> None:
        server_logger.warning("HTTP/2 flood of %s from %s: closing the connection", what,
                              _peer(self.client))
        self._goaway_and_close(ENHANCE_YOUR_CALM)

    def _protocol_failure(self, what: str) -> None:
        server_logger.warning("HTTP/2 %s from %s: closing the connection", what,
                              _peer(self.client))
        self._write_now()  # H2Connection has queued its GOAWAY, with the error code
        self._close(goaway=False)

    def _goaway_and_close(self, code: int) -> None:
        self.conn.goaway(code)
        self.conn.stopped = True
        self._close(goaway=False)

    def _close(self, goaway: bool = True) -> None:
        if self._closed or self.transport is None:
            return
        if goaway:
            self.conn.goaway(NO_ERROR)
        self.conn.stopped = True
        self._write_now()
        self._closed = True
        self._cancel_timers()
        self.transport.close()

    def _write(self) -> None:
        """Write what H2Connection has queued once this loop iteration is over: the frames of
        many streams answered in one go leave in one write, not one each."""
        if not self._write_scheduled:
            self._write_scheduled = True
            self.loop.call_soon(self._write_now)

    def _write_now(self) -> None:
        self._write_scheduled = False
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _arm_idle_timer(self) -> None:
        """No stream is open from now: close after the keep-alive timeout unless one opens.

        One timer, moved lazily: a stream opening leaves it be (it finds the connection
        busy when it fires), so a request costs no timer made and cancelled."""
        limits = self.state.limits
        timeout = limits.keep_alive_timeout or limits.header_timeout
        self._idle_deadline = self.loop.time() + timeout
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_at(self._idle_deadline, self._idle_too_long)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_idle_timer()
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None

    def _idle_too_long(self) -> None:
        self._idle_timer = None
        if self._closed or self.sinks:
            return  # busy: _forget arms it again once no stream is open
        if self.loop.time() < self._idle_deadline:  # idle again since it was set
            self._idle_timer = self.loop.call_at(self._idle_deadline, self._idle_too_long)
            return
        self._close()


def _host_of(headers: list[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == b"host":
            return value
    return b""


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"


