"""HTTP/3 on one QUIC connection: aioquic's connection and H3 state machines, our streams.

Owns one `QuicConnection` (made by quic/endpoint.py, which routes its
datagrams here) and the `H3Connection` over it.  Every request stream gets an
`HTTPStream` (the same ASGI cycle HTTP/1.1 and HTTP/2 drive) and an
`_H3StreamSink` that turns what the stream sends into HEADERS and DATA frames.
Request heads go through `h2_fields.read_request_head` (the pseudo-header
rules are HTTP/2's, RFC 9114 4.3) and `asgi.request_head.request_scope`, the
one entry every protocol calls.

One timer per connection: it fires at the earlier of QUIC's own deadline
(loss detection, acks, idle) and the first stream's REQUEST_TIMEOUT, and is
moved only when a deadline comes earlier (a later one is checked when it
fires).  This module never builds ASGI messages.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import FrameType, H3Connection, encode_frame
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.h3.exceptions import H3Error
from aioquic.quic import events as quic_events

from qactuar.asgi.http_stream import HTTPStream, ResponseSink
from qactuar.asgi.request_head import RefusedRequest, refused_scope, request_scope
from qactuar.logs import exception_logger, server_logger
from qactuar.protocols import h2_websocket, h3_websocket
from qactuar.protocols.h2_fields import (
    MalformedFields,
    check_trailers,
    read_request_head,
    response_fields,
)
from qactuar.protocols.write_waiters import WriteWaiters
from qactuar.server_state import SERVER_HEADER

if TYPE_CHECKING:
    import asyncio

    from aioquic.quic.connection import QuicConnection

    from qactuar.quic.endpoint import QuicEndpoint
    from qactuar.server_state import ServerState

# HTTP/3 error codes (RFC 9114 8.1).
H3_NO_ERROR = 0x100
H3_INTERNAL_ERROR = 0x102
H3_REQUEST_REJECTED = 0x10B
H3_REQUEST_CANCELLED = 0x10C
H3_MESSAGE_ERROR = 0x10E
_SERVER_VALUE = SERVER_HEADER[len(b"server: "):-2]
_STATUS_BYTES = {code: str(code).encode() for code in range(100, 600)}
# A response's bytes queued in QUIC and not yet acknowledged above which the
# app's send() waits: what a client that stopped reading can make us hold.
SEND_HIGH_WATER = 1 << 20


class _H3StreamSink(ResponseSink):
    """The `ResponseSink` of one HTTP/3 request stream."""

    __slots__ = ("deadline", "ended", "head_only", "received", "request_ended", "session",
                 "stream", "stream_id", "waiters", "websocket")

    def __init__(self, session: H3Session, stream_id: int, head_only: bool) -> None:
        self.session = session
        self.stream_id = stream_id
        self.head_only = head_only
        self.stream: HTTPStream | None = None
        self.ended = False  # the response's last frame (or a reset) is queued
        self.request_ended = False
        self.received = 0
        self.deadline = 0.0  # REQUEST_TIMEOUT for the app (0: not timed)
        self.waiters: WriteWaiters | None = None
        self.websocket: Any = None  # an H2WebSocketProtocol on an extended CONNECT stream

    @property
    def writing_paused(self) -> bool:
        return self.session.backlog(self.stream_id) > SEND_HIGH_WATER

    def send_head(self, stream: HTTPStream, body: bytes, end: bool) -> None:
        self.session.send_head(self, stream, body, end)

    def send_body(self, body: bytes, end: bool) -> None:
        self.session.send_body(self, body, end)

    def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.session.send_fields(self, response_fields(headers), end=True)

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        pass  # aioquic takes a second HEADERS frame as trailers: 1xx are not sent

    def push(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        pass  # no server push over HTTP/3

    def abort(self) -> None:
        self.session.reset_stream(self, H3_INTERNAL_ERROR)

    def request_body(self) -> None:
        pass  # aioquic opens QUIC's flow-control windows itself; MAX_BODY_SIZE bounds a body

    def response_done(self, stream: HTTPStream) -> None:
        self.deadline = 0.0
        self.session.stream_finished(self)

    async def wait_writable(self) -> None:
        if not self.writing_paused or self.ended:
            return
        if self.waiters is None:
            self.waiters = WriteWaiters()
        await self.waiters.wait(self.session.loop)

    def release_writers(self) -> None:
        if self.waiters is not None:
            self.waiters.release()


class H3Session:
    """One HTTP/3 connection: its QUIC state, its request streams, its one timer."""

    def __init__(self, state: ServerState, endpoint: QuicEndpoint, quic: QuicConnection,
                 client: tuple[str, int], server: tuple[str, int] | None) -> None:
        self.state = state
        self.loop: asyncio.AbstractEventLoop = state.loop
        self.endpoint = endpoint
        self.quic = quic
        self.h3 = H3Connection(quic)
        self.client = client
        self.server = server
        self.transport = self  # what the server's drain aborts (see `abort`)
        self.sinks: dict[int, _H3StreamSink] = {}
        self.cids: set[bytes] = set()  # the endpoint's keys for this connection
        self.closed = False  # CONNECTION_CLOSE queued or received: no new streams
        self.terminated = False
        self._goaway_sent = False
        self._last_stream_id = -1  # the highest request stream seen
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._transmit_scheduled = False
        self._problem_logged = False
        state.connections.add(self)

    # -- datagrams and time (called by the endpoint) ------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[Any, ...], now: float) -> None:
        if self.terminated:
            return
        if addr[1] != self.client[1] or addr[0] != self.client[0]:
            self.client = (str(addr[0]), int(addr[1]))  # the client moved (or its NAT did)
        self.quic.receive_datagram(data, addr, now)
        self._process_events()

    def transmit(self) -> None:
        """Send what QUIC has queued, then set the connection's timer."""
        self._transmit_scheduled = False
        if self.terminated:
            return
        now = self.loop.time()
        self.endpoint.send_datagrams(self.quic.datagrams_to_send(now))
        for sink in list(self.sinks.values()):
            if sink.waiters is not None and not sink.writing_paused:
                sink.release_writers()
        self._schedule_timer()
        if self._goaway_sent and not self.sinks and not self.closed:
            self._close_when_delivered()

    def transmit_soon(self) -> None:
        """One transmit per loop iteration, however many streams wrote meanwhile."""
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            self.loop.call_soon(self.transmit)

    def _schedule_timer(self) -> None:
        at = self.quic.get_timer()
        for sink in self.sinks.values():
            if sink.deadline and (at is None or sink.deadline < at):
                at = sink.deadline
        if at is None:
            return  # a timer still set fires, finds nothing due and is not set again
        if self._timer is not None:
            if self._timer_at <= at:
                return  # it fires first and looks again then
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        if self.terminated:
            return
        now = self.loop.time()
        at = self.quic.get_timer()
        if at is not None and at <= now:
            self.quic.handle_timer(now)
            self._process_events()
        for sink in list(self.sinks.values()):
            if sink.deadline and sink.deadline <= now:
                sink.deadline = 0.0
                if sink.stream is not None:
                    sink.stream.request_timed_out()
        self.transmit()

    # -- QUIC and HTTP/3 events --------------------------------------------------------

    def _process_events(self) -> None:
        quic = self.quic
        while True:
            event = quic.next_event()
            if event is None:
                break
            kind = type(event)
            if kind is quic_events.ConnectionIdIssued:
                self.endpoint.register(event.connection_id, self)
            elif kind is quic_events.ConnectionIdRetired:
                self.endpoint.unregister(event.connection_id)
            elif kind is quic_events.ConnectionTerminated:
                self._terminated(event)
                return
            elif kind is quic_events.StreamReset or kind is quic_events.StopSendingReceived:
                self._on_reset(event.stream_id)
            try:
                h3_events = self.h3.handle_event(event)
                for h3_event in h3_events:
                    if type(h3_event) is HeadersReceived:
                        self._on_headers(h3_event)
                    elif type(h3_event) is DataReceived:
                        self._on_data(h3_event)
            except Exception as exc:  # a bug of ours: this connection ends, the server lives
                exception_logger.error("error while handling HTTP/3 frames", exc_info=exc)
                self._close(H3_INTERNAL_ERROR, "internal error")
                return
        # No transmit here: the endpoint sends once per batch of datagrams, the timer
        # once it has run.

    def _on_headers(self, event: HeadersReceived) -> None:
        stream_id = event.stream_id
        sink = self.sinks.get(stream_id)
        if sink is not None:  # a second header block: the request's trailers
            try:
                check_trailers(event.headers)
            except MalformedFields as exc:
                self._malformed(stream_id, exc)
                return
            self._on_request_end(sink)
            return
        if stream_id <= self._last_stream_id:
            return  # trailers of a stream already answered and forgotten
        self._last_stream_id = stream_id
        if self._goaway_sent or self.closed:
            self._reset(stream_id, H3_REQUEST_REJECTED)
            return
        try:
            head = read_request_head(event.headers)
        except MalformedFields as exc:
            self._malformed(stream_id, exc)
            return
        self._start_stream(stream_id, head, event.stream_ended)

    def _start_stream(self, stream_id: int, head: Any, ended: bool) -> None:
        method, path, scheme, authority, protocol, headers, content_length = head
        sink = _H3StreamSink(self, stream_id, method == b"HEAD")
        self.sinks[stream_id] = sink
        sink.request_ended = ended
        state = self.state
        # RFC 9220: an extended CONNECT for `websocket` (aioquic announces
        # SETTINGS_ENABLE_CONNECT_PROTOCOL); it is read as the GET of a handshake.
        websocket = (method == b"CONNECT" and protocol == b"websocket" and state.websocket
                     and not state.shutting_down and not ended)
        method_name = "GET" if websocket else method.decode("ascii", "replace")
        target = path or b""
        if authority is None:  # read_request_head made sure there is a host field
            authority = next(value for name, value in headers if name == b"host")
        extensions: dict[str, Any] = {"http.response.trailers": {}}
        problem: RefusedRequest | None = None
        if sum(len(name) + len(value) for name, value in headers) > \
                state.limits.max_header_size:
            problem = RefusedRequest(431, "Request Header Fields Too Large")
        try:
            if problem is not None:
                raise problem
            scope, app = request_scope(
                state, method_name, target, "3", headers, authority, content_length,
                scheme.decode("ascii", "replace") if scheme else "https",
                self.client, self.server, extensions)
        except RefusedRequest as refused:
            problem = refused
            scope = refused_scope(state, method_name, target, "3", headers, self.client,
                                  self.server)
            app = None
        if websocket and problem is None:
            bad = h2_websocket.handshake_problem(headers)
            if bad is None:
                self._start_websocket(sink, scope, app)
                return
            problem = RefusedRequest(400, bad)
        stream = HTTPStream(sink, scope, app, state)
        sink.stream = stream
        if ended:
            stream.end_body()
        if problem is not None:
            server_logger.info("%d %s from %s (HTTP/3 stream %d)", problem.status,
                               problem.reason, _peer(self.client), stream_id)
            stream.reject(problem.status, problem.reason)
            return
        limits = state.limits
        if limits.limit_concurrency and state.over_concurrency_limit():
            stream.app = state.unavailable_app
        if limits.request_timeout > 0:
            sink.deadline = self.loop.time() + limits.request_timeout
        stream.start()

    def _start_websocket(self, sink: _H3StreamSink, http_scope: dict[str, Any],
                         app: Any) -> None:
        """The stream carries one WebSocket, run by the same session code as over HTTP/2."""
        websocket = h2_websocket.H2WebSocketProtocol(self.state, http_scope, app)
        transport = h3_websocket.StreamTransport(self, sink)
        websocket.stream_transport = transport  # type: ignore[assignment]
        sink.websocket = websocket
        websocket.take_over(transport, b"", False)

    def send_stream_headers(self, sink: _H3StreamSink, fields: list[tuple[bytes, bytes]],
                            end: bool) -> None:
        """Headers outside the HTTPStream cycle (a WebSocket's answer)."""
        self.send_fields(sink, fields, end)
        if end:
            self.stream_finished(sink)

    def _on_data(self, event: DataReceived) -> None:
        sink = self.sinks.get(event.stream_id)
        if sink is not None and sink.websocket is not None:
            if event.data:
                sink.websocket.data_received(event.data)
            if event.stream_ended:
                self._on_request_end(sink)
            return
        if sink is None or sink.stream is None:
            return  # answered and forgotten: the rest is not wanted
        stream = sink.stream
        data = event.data
        if data and not stream.response_complete:
            sink.received += len(data)
            limit = self.state.limits.max_body_size
            if limit and sink.received > limit:
                server_logger.info("413 Content Too Large from %s (HTTP/3 stream %d)",
                                   _peer(self.client), event.stream_id)
                stream.reject(413, "Content Too Large")
                return
            stream.receive_body(data)
        if event.stream_ended:
            self._on_request_end(sink)

    def _on_request_end(self, sink: _H3StreamSink) -> None:
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
        stream = sink.stream
        if not sink.ended:  # the client gave up on it: so do we (RFC 9114 4.1.1)
            sink.ended = True
            with contextlib.suppress(Exception):
                self.quic.reset_stream(stream_id, H3_REQUEST_CANCELLED)
        self._forget(sink)
        if stream is not None:
            stream.client_gone()
        sink.release_writers()

    def _malformed(self, stream_id: int, problem: MalformedFields) -> None:
        """A malformed request (RFC 9114 4.1.2): H3_MESSAGE_ERROR on this stream only."""
        self.endpoint.counters.note("malformed_requests", "HTTP/3 malformed request from %s "
                                    "(stream %d): %s; stream reset", _peer(self.client),
                                    stream_id, problem)
        sink = self.sinks.get(stream_id)
        if sink is not None:
            if sink.stream is not None:
                sink.stream.client_gone()
            self.reset_stream(sink, H3_MESSAGE_ERROR)
            return
        self._reset(stream_id, H3_MESSAGE_ERROR)

    def _reset(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(Exception):  # a stream aioquic no longer has
            self.quic.reset_stream(stream_id, code)
            self.quic.stop_stream(stream_id, code)
        self.transmit_soon()

    # -- the sending side (called by the stream sinks) --------------------------------

    def backlog(self, stream_id: int) -> int:
        """Response bytes of a stream that QUIC holds, unsent or unacknowledged."""
        stream = self.quic._streams.get(stream_id)
        return len(stream.sender._buffer) if stream is not None else 0

    def send_head(self, sink: _H3StreamSink, stream: HTTPStream, body: bytes,
                  end: bool) -> None:
        if self.terminated or sink.ended:
            return
        status = stream.status
        fields = [(b":status", _STATUS_BYTES[status]), *response_fields(stream.headers)]
        if not stream.has_date:
            fields.append((b"date", self.state.date_line[6:-2]))
        if not stream.has_server and self.state.server_header:
            fields.append((b"server", _SERVER_VALUE))
        no_body = sink.head_only or status == 204 or status == 304
        if end and not stream.has_length and not no_body:
            fields.append((b"content-length", b"%d" % len(body)))
        if no_body:
            sink.head_only = True
            body = b""
        if not self.send_fields(sink, fields, end=end and not body):
            return
        if body or end:
            self.send_body(sink, body, end)

    def send_fields(self, sink: _H3StreamSink, fields: list[tuple[bytes, bytes]],
                    end: bool) -> bool:
        """A HEADERS frame (the head, or trailers with `end`); False if the stream is gone."""
        if self.terminated or sink.ended:
            return False
        try:
            self.h3.send_headers(sink.stream_id, fields, end_stream=end)
        except (H3Error, AssertionError, ValueError):
            sink.ended = True  # the client reset the stream meanwhile
            return False
        if end:
            sink.ended = True
        self.transmit_soon()
        return True

    def send_body(self, sink: _H3StreamSink, body: bytes, end: bool) -> None:
        if self.terminated or sink.ended:
            return
        if sink.head_only:
            body = b""
            if not end:
                return
        try:
            self.h3.send_data(sink.stream_id, body, end_stream=end)
        except (H3Error, AssertionError, ValueError):
            sink.ended = True
            return
        if end:
            sink.ended = True
        self.transmit_soon()

    def reset_stream(self, sink: _H3StreamSink, code: int) -> None:
        if sink.ended:
            return
        sink.ended = True
        sink.request_ended = True
        self._reset(sink.stream_id, code)
        sink.release_writers()
        self._forget(sink)

    def stream_finished(self, sink: _H3StreamSink) -> None:
        """The app's response is complete (sent, or aborted)."""
        if sink.ended:
            if not sink.request_ended:
                # Answered before the request body was in: the rest is not wanted.
                sink.request_ended = True
                with contextlib.suppress(Exception):
                    self.quic.stop_stream(sink.stream_id, H3_NO_ERROR)
            self._forget(sink)
        self.transmit_soon()

    def _forget(self, sink: _H3StreamSink) -> None:
        if self.sinks.pop(sink.stream_id, None) is None:
            return
        sink.stream = None  # no reference cycle between sink and stream
        if sink.websocket is not None:
            websocket, sink.websocket = sink.websocket, None
            websocket.connection_lost(None)  # the stream is over, as a TCP close
        if not self.sinks and self._goaway_sent:
            self._close_when_delivered()

    def _close_when_delivered(self) -> None:
        """After GOAWAY and the last response: close once the client has every byte
        (closing now would drop what QUIC still holds; SHUTDOWN_TIMEOUT bounds the wait)."""
        if self.closed:
            return
        if any(stream.sender._buffer or stream.sender._pending_eof
               for stream in self.quic._streams.values()):
            return  # transmit() looks again after the next acknowledgements

        self._close(H3_NO_ERROR, "server shutting down")

    # -- connection management ------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful shutdown or reload: GOAWAY, let open streams finish, then close."""
        if self.closed or self._goaway_sent or self.terminated:
            return
        self._goaway_sent = True
        control = self.h3._local_control_stream_id
        if control is not None:
            # RFC 9114 5.2: the first request stream ID not served (the next one after
            # the last seen).  aioquic has no GOAWAY of its own to send.
            self.quic.send_stream_data(control, encode_frame(
                FrameType.GOAWAY, encode_uint_var(max(self._last_stream_id + 4, 0))))
        if not self.sinks:
            self._close_when_delivered()
        self.transmit_soon()

    def abort(self) -> None:
        """SHUTDOWN_TIMEOUT is up: close now, whatever is still open."""
        for sink in list(self.sinks.values()):
            stream = sink.stream
            sink.ended = True
            self._forget(sink)
            if stream is not None:
                stream.client_gone()
        self._close(H3_INTERNAL_ERROR, "server shutting down")

    def _close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.quic.close(error_code=code, reason_phrase=reason)
        self.transmit()
        # The connection keeps answering retransmits until QUIC's closing period ends
        # (ConnectionTerminated); for the server's drain it is done.
        self._leave_state()

    def _terminated(self, event: quic_events.ConnectionTerminated) -> None:
        self.terminated = True
        self.closed = True
        if event.error_code not in (0, H3_NO_ERROR) and not self._problem_logged:
            self._problem_logged = True
            self.endpoint.counters.note(
                "connection_errors", "HTTP/3 connection with %s closed: error 0x%x (%s)",
                _peer(self.client), event.error_code, event.reason_phrase or "no reason")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sink in list(self.sinks.values()):
            stream = sink.stream
            sink.ended = True
            self._forget(sink)
            if stream is not None:
                stream.client_gone()
            sink.release_writers()
        self.endpoint.forget(self)
        self._leave_state()

    def _leave_state(self) -> None:
        if self in self.state.connections:
            self.state.connections.discard(self)
            if self.state.observer is not None:
                self.state.observer.connection_closed()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"
