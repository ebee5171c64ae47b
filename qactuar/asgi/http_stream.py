"""ONE HTTP request/response cycle on the ASGI side: `receive()`, `send()`, the app task.

A wire protocol creates an `HTTPStream` per request, feeds it the request body
(`receive_body`, `end_body`) and tells it when the client is gone
(`client_gone`).  The stream validates what the app sends and calls back into
the protocol through the small `ResponseSink` interface.  This module never
touches bytes on the wire, so HTTP/1.1 and HTTP/2 share one ASGI cycle.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from qactuar.asgi import file_body
from qactuar.logs import escape, exception_logger, log_access, server_logger

if TYPE_CHECKING:
    from qactuar.limits import Limits
    from qactuar.server_state import ServerObserver, ServerState

# The response phase of a stream (HTTPStream._phase): C ints when compiled.
(_AWAITING_START, _STARTED, _SENDING_BODY, _AWAITING_TRAILERS, _COMPLETE,
 _UNANSWERED) = range(6)
RESPONSE_PHASES = (
    "waiting for 'http.response.start'",  # nothing accepted yet
    "the response head is not yet sent",  # start accepted; the head goes with the first body
    "sending the body",  # head written; body parts go out
    "waiting for 'http.response.trailers'",  # last body part sent, trailers announced
    "the response was complete",  # sent, or cut after its start
    "the request ended without a response",  # the client went before any start
)
_TASK_NAME = "qactuar request"
_Task = asyncio.Task  # one global look-up per request, not a global and an attribute
# Python 3.12+: the app's first step runs at once (Task(eager_start=True)) and a
# Task is scheduled only if the app suspends; one that finishes in that step never
# reaches asyncio's task registry (a WeakSet, Python code: about 4,000 instructions
# a request on 3.13 to add and remove it).  The multiplexed protocols start it in
# their read callback: one read brings many requests, answered in place.  HTTP/1.1
# starts it in a ready callback run after this loop pass's reads (`_start_pending`):
# answered in the read callback, a loaded server writes each response as its
# request arrives and then waits in the poll for the next, so it and its clients
# wake per request instead of per batch (Starlette on 3.12: 18,550 req/s in the
# read callback, 31,151 scheduled; docs/benchmarks.md).
EAGER_START = sys.version_info >= (3, 12)
# True while an app's first step runs eagerly: a stream started in place from
# inside it is scheduled instead, so that one app step never nests another.
# (HTTP/1.1's next pipelined request waits for the next pass's _start_pending.)
_eager_step_running = False
DISCONNECT = {"type": "http.disconnect"}

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z").match
# Field values may hold visible bytes, obs-text, space and tab; never CR, LF, NUL
# or another control byte.  (Deleting them and comparing lengths is cheaper than
# a regex search.)
_CONTROL_BYTES = bytes(range(0x00, 0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"


# Response headers the server acts on.  Connection-level ones are never passed
# on: the protocol frames the body and manages the connection itself.
_PLAIN, _CONTENT_LENGTH, _DROPPED, _CONNECTION, _DATE, _SERVER = range(6)
_SPECIAL_HEADERS = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _DROPPED,
    b"keep-alive": _DROPPED,
    b"connection": _CONNECTION,
    b"date": _DATE,
    b"server": _SERVER,
}
# Header pairs apps sent before, already checked, with their kind: apps send
# the same few pairs over and over, so each is checked once.  Bounded in count
# and pair size (and never evicting) so that apps sending ever new values, such
# as a request id or a client's own data, cannot grow it.
_CHECKED_PAIRS: dict[tuple[bytes, bytes], int] = {}
_CHECKED_PAIRS_LIMIT = 1024
_CHECKED_PAIR_SIZE = 256
# Content-Length values apps sent before, as ints: int(bytes) costs more than
# the rest of the header's handling.  Bounded like _CHECKED_PAIRS.
_CONTENT_LENGTHS: dict[bytes, int] = {}


def checked_header(pair: Any) -> tuple[bytes, bytes]:
    """An app's header pair, checked: two bytes, a token name, no control bytes in the value.

    (`HTTPStream._accept_start` remembers the pairs it has checked.)
    """
    try:
        name, value = pair
    except (TypeError, ValueError):
        raise RuntimeError(f"ASGI app sent a malformed header {pair!r}") from None
    if not isinstance(name, bytes) or not isinstance(value, bytes):
        raise RuntimeError(f"ASGI app sent a header that is not bytes: {pair!r}")
    if not _TOKEN(name):
        raise RuntimeError(f"ASGI app sent an invalid header name {name!r}")
    if len(value.translate(None, _CONTROL_BYTES)) != len(value):
        raise RuntimeError(f"ASGI app sent a header value with control bytes: {value!r}")
    return name, value


class ClientDisconnected(OSError):
    """Raised by `send()` once the client has gone (ASGI spec 2.4)."""


class ResponseSink:
    """What a stream needs from the protocol that carries it.

    The base class of `HTTP1Protocol` and HTTP/2's stream sink, rather than a
    typing Protocol: compiled (http_stream.pxd), a stream calls the methods
    below on an HTTP/1.1 connection as C calls.  Every method is overridden,
    and every sink has a `writing_paused` attribute (true while the client is
    not reading).
    """

    __slots__ = ()  # subclasses keep slots: an idle connection has no instance dict

    def send_head(self, stream: HTTPStream, body: bytes, end: bool) -> None:
        """Write the response head of `stream` (status, headers, the facts
        below) and, coalesced with it, the first body bytes."""
        raise NotImplementedError

    def send_body(self, body: bytes, end: bool) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def request_body(self) -> None:
        raise NotImplementedError

    def response_done(self, stream: HTTPStream) -> None:
        raise NotImplementedError

    async def wait_writable(self) -> None:
        raise NotImplementedError

    def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """End the response with trailer fields (after send_body(..., end=False))."""
        raise NotImplementedError

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """An interim (1xx) response before the head; a protocol may drop it."""
        raise NotImplementedError

    def push(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Push a GET of `path` (HTTP/2 server push); a protocol may drop it."""
        raise NotImplementedError

    def file_socket(self) -> int:
        """The socket descriptor a file body may be `os.sendfile`d to once the
        write buffer is empty, or -1 (the body then goes through send_body)."""
        return -1

    def write_buffer_size(self) -> int:
        """Bytes written and not yet taken by the kernel."""
        return 0


class StreamHost(Protocol):
    """The server-wide state a stream reports to (task accounting, settings)."""

    loop: asyncio.AbstractEventLoop
    access_log: bool
    limits: Limits
    tasks: set[asyncio.Task[None]]
    pending_starts: list[HTTPStream]  # HTTP/1.1 requests whose app starts this pass
    in_flight: int  # responses started and not yet complete (LIMIT_CONCURRENCY)
    observer: ServerObserver | None  # told of each request (server_state.py)
    stats: Any  # the admin plane's ProcessStats, or None (qactuar/admin/stats.py)


def error_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of a server-made plain-text error answer (after which the connection closes)."""
    return [(b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode())]


class HTTPStream:
    """The ASGI side of one request: the app task, `receive()` and `send()`.

    After `http.response.start` the head is described by `status`, `headers`
    (validated, without connection-level fields), `has_length` (the app set
    Content-Length), `has_date`, `has_server` and `close_connection` (the app
    sent `Connection: close`); the sink reads them in `send_head`.
    """

    __slots__ = (
        "_app_running", "_body_chunks", "_body_complete", "_body_discarded", "_body_size",
        "_content_length", "_final_body_sent", "_host", "_input_closed", "_phase",
        "_sent_bytes", "_slot_held", "_start_cancelled", "_started_at", "_trailers",
        "_trailers_expected", "_waiters",
        "app", "close_connection", "disconnected", "has_date", "has_length", "has_server",
        "headers", "scope", "sink", "status", "task",
    )

    def __init__(self, sink: ResponseSink, scope: dict[str, Any], app: Any,
                 host: StreamHost) -> None:
        self.setup(sink, scope, app, host)

    def setup(self, sink: ResponseSink, scope: dict[str, Any], app: Any,
              host: StreamHost) -> None:
        """What __init__ does, for a stream made by `__new__`: compiled, the
        protocols make their streams so, a C call instead of a type call that
        parses four arguments (about 600 instructions a request)."""
        self.sink = sink
        self.scope = scope
        self.app = app
        self._host = host
        self._body_chunks: list[bytes] = []
        self._body_size = 0
        self._body_complete = False
        self._final_body_sent = False
        self._waiters: list[asyncio.Future[None]] | None = None
        self.disconnected = False
        self._input_closed = False
        self._phase = _AWAITING_START  # one of RESPONSE_PHASES
        self._body_discarded = False  # HEAD, 204, 304: body parts are never written
        self._sent_bytes = 0
        self.task: asyncio.Task[None] | None = None
        self._app_running = False
        self._slot_held = False  # start() ran: the stream counts in host.in_flight
        self._start_cancelled = False  # cancelled while waiting for _start_pending
        self._trailers_expected = False
        self._trailers: list[tuple[bytes, bytes]] | None = None

    # -- called by the protocol -------------------------------------------

    @property
    def buffered(self) -> int:
        return self._body_size

    @property
    def response_started(self) -> bool:
        """`http.response.start` was accepted (or the server answered for the app)."""
        return _STARTED <= self._phase <= _COMPLETE

    @property
    def response_complete(self) -> bool:
        """The response is over: sent, cut, or never to be made (its slot is released)."""
        return self._phase >= _COMPLETE

    @property
    def response_phase(self) -> str:
        return RESPONSE_PHASES[self._phase]

    def start(self, in_place: bool = True) -> None:
        """Run the app for this request.  On Python 3.12+ its first step runs eagerly:
        now if `in_place`, else once this loop pass's reads are done (HTTP/1.1)."""
        host = self._host
        if host.access_log or host.stats is not None:
            self._started_at = time.monotonic()
        host.in_flight += 1
        self._slot_held = True
        if host.observer is not None:
            host.observer.request_started()
        loop = host.loop
        if EAGER_START and not in_place:
            starts = host.pending_starts
            if not starts:
                loop.call_soon(_start_pending, host)
            starts.append(self)
            return
        if loop.get_task_factory() is not None:
            task = loop.create_task(self._run())  # the app installed its own factory
        elif EAGER_START and not _eager_step_running:
            self._start_eagerly(loop)
            return
        else:
            # Made directly and named: loop.create_task would format a
            # "Task-<n>" name per request (uvloop even when given a name).
            task: asyncio.Task[None] = _Task(self._run(), loop=loop, name=_TASK_NAME)
        self._keep_task(task)

    def _start_eagerly(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's first step now (Python 3.12+); keep its task only if it suspends."""
        global _eager_step_running
        _eager_step_running = True
        try:
            task = _Task(self._run(), loop=loop, name=_TASK_NAME, eager_start=True)
        finally:
            _eager_step_running = False
        if not task.done():
            self._keep_task(task)

    def _keep_task(self, task: asyncio.Task[None]) -> None:
        """Hold the app's task until it returns (for cancelling it, and for shutdown)."""
        self.task = task
        self._host.tasks.add(task)  # removed by _run itself: no done-callback per request

    def receive_body(self, chunk: bytes) -> None:
        if self._phase >= _COMPLETE:
            return  # the answer is out; the rest of the body is discarded
        self._body_chunks.append(chunk)
        self._body_size += len(chunk)
        if self._host.stats is not None:
            self._host.stats.bytes_in += len(chunk)
        if self._waiters:
            self._wake()

    def end_body(self) -> None:
        self._body_complete = True
        if self._waiters:
            self._wake()

    def client_gone(self) -> None:
        self.disconnected = True
        self._wake()

    def client_done_sending(self) -> None:
        """The client half-closed: it can still read the answer but will send nothing."""
        self._input_closed = True
        self._wake()

    def reject(self, status: int, reason: str) -> None:
        """Stop this request with an error status (a limit was hit mid-request)."""
        if not self._slot_held and (self._host.access_log or self._host.stats is not None):
            self._started_at = time.monotonic()  # refused before its app started (HTTP/2)
        self._fail_response(status, reason)
        self._cancel_task()

    def request_timed_out(self) -> None:
        """REQUEST_TIMEOUT has passed since the app started (the protocol times it)."""
        if self._phase != _AWAITING_START:
            return  # a started response is never cut by REQUEST_TIMEOUT
        if self.disconnected:
            self._cancel_task()  # nobody is waiting for this answer
            return
        server_logger.warning("request %s %s timed out after %ss before the app started its "
                              "response; answered 504", self.scope["method"],
                              _log_path(self.scope), self._host.limits.request_timeout)
        self.reject(504, "Gateway Timeout: the application did not answer in time")

    # -- the ASGI callables ------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while True:
            if self._body_chunks or (self._body_complete and not self._final_body_sent):
                chunks = self._body_chunks
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._body_size = 0
                more = not self._body_complete
                self._final_body_sent = not more
                if more and self._phase < _COMPLETE:
                    self.sink.request_body()  # resume reading if it was paused
                return {"type": "http.request", "body": body, "more_body": more}
            if self.disconnected or self._phase >= _COMPLETE or self._input_closed:
                return DISCONNECT
            self.sink.request_body()
            # Apps may call receive() from several tasks; each waiter is woken.
            waiter = self._host.loop.create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def send(self, message: Mapping[str, Any]) -> None:
        # Read as an exact dict: compiled, the checks below take nothing else
        # (Cython refuses even a dict subclass), so any other mapping is copied.
        event: dict[str, Any] = message if type(message) is dict else _plain_message(message)
        kind = event.get("type")
        # One check per message: is it allowed in the stream's phase?
        phase = self._phase
        if kind == "http.response.body":
            if phase != _STARTED and phase != _SENDING_BODY:
                raise self._out_of_order(kind)
            if self.disconnected:
                raise ClientDisconnected("the client has disconnected")
            body = event.get("body", b"")
            more = event.get("more_body", False)
            if type(body) is not bytes:
                if not isinstance(body, bytes | bytearray | memoryview):
                    raise RuntimeError(f"ASGI app sent a body of type {type(body).__name__}, "
                                       "expected bytes")
                body = bytes(body)
            sink = self.sink
            if sink.writing_paused:
                # The client is not reading: wait before adding to what it owes.
                await sink.wait_writable()
                if self.disconnected:
                    raise ClientDisconnected("the client has disconnected")
            self._sent_bytes += len(body)
            expected = self._content_length
            if expected is not None and (
                self._sent_bytes > expected or (not more and self._sent_bytes < expected)
            ):
                if self._phase == _SENDING_BODY:
                    self._abort()
                raise RuntimeError(f"ASGI app sent {self._sent_bytes} body bytes but declared "
                                   f"content-length {expected}")
            end = not more
            trailers_due = end and self._trailers_expected
            if trailers_due:
                end = False  # the response ends with its trailers
            if self._phase == _STARTED:
                self._phase = _SENDING_BODY
                if self._host.observer is not None:
                    self._host.observer.response_started()
                sink.send_head(self, body, end)
            else:
                sink.send_body(body, end)
            if end:
                self._finish()
            elif trailers_due:
                if self._phase == _SENDING_BODY:
                    self._phase = _AWAITING_TRAILERS
            elif self._body_discarded:
                # Nothing reaches the transport, so its back-pressure never makes
                # this wait: yield, or an app streaming without end to a HEAD
                # request would hold the event loop (and every other client).
                await asyncio.sleep(0)
        elif kind == "http.response.start":
            if phase != _AWAITING_START:
                raise self._out_of_order(kind)
            if self.disconnected:
                raise ClientDisconnected("the client has disconnected")
            self._accept_start(event)
        elif kind == "http.response.trailers":
            if phase != _AWAITING_TRAILERS:
                raise self._out_of_order(kind)
            self._accept_trailers(event)
        elif kind == "http.response.early_hint":
            if phase != _AWAITING_START:
                raise self._out_of_order(kind)
            self._accept_early_hint(event)
        elif kind == "http.response.push":
            self._accept_push(event)  # in any phase: dropped once the response is over
        elif kind == "http.response.pathsend" or kind == "http.response.zerocopysend":
            whole_file = kind == "http.response.pathsend"  # the whole body; else a part
            if phase != _STARTED and (phase != _SENDING_BODY or whole_file):
                raise self._out_of_order(kind)
            if self.disconnected:
                raise ClientDisconnected("the client has disconnected")
            await self._send_file(event, whole_file)
        else:
            raise RuntimeError(f"ASGI app sent an unexpected message: {kind!r}")

    async def _send_file(self, event: dict[str, Any], whole_file: bool) -> None:
        """The body from a file (qactuar/asgi/file_body.py): a path, or an app's open file."""
        if whole_file:
            fd, count = file_body.open_path(event)
            offset = 0
            more = False
            if self._phase == _STARTED and not self.has_length:
                # The size is known: the body is framed by a Content-Length, not chunked.
                self.headers.append((b"content-length", b"%d" % count))
                self.has_length = self.status != 204
                if not self._body_discarded:
                    self._content_length = count
        else:
            fd, offset, count, more = file_body.zero_copy_span(event)
        try:
            if self._body_discarded:
                await self.send({"type": "http.response.body", "body": b"", "more_body": more})
                return
            if self._phase == _STARTED:  # the head goes out first, alone
                await self.send({"type": "http.response.body", "body": b"", "more_body": True})
            await file_body.send_span(self, fd, offset, count, more)
        finally:
            if whole_file:
                os.close(fd)

    def count_sent(self, size: int) -> None:
        """`size` body bytes reached the client other than through send_body (sendfile)."""
        self._sent_bytes += size

    def add_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Wake `waiter` when the client goes or the response ends."""
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        if self._waiters and waiter in self._waiters:
            self._waiters.remove(waiter)

    def _out_of_order(self, kind: str) -> RuntimeError:
        """The error for a message the app sent in a phase that does not take it."""
        return RuntimeError(f"ASGI app sent {kind!r} while {RESPONSE_PHASES[self._phase]}")

    # -- internals ---------------------------------------------------------

    def _accept_start(self, message: dict[str, Any]) -> None:
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 599:  # bool is not a status
            raise RuntimeError(f"ASGI app sent an invalid status {status!r}")
        headers: list[tuple[bytes, bytes]] = []
        content_length = None
        has_date = has_server = close_connection = False
        checked: dict = _CHECKED_PAIRS  # typed: a C dict look-up when compiled
        for pair in message.get("headers", ()):
            try:
                kind = checked.get(pair)
            except TypeError:  # unhashable: checked_header says what is wrong with it
                kind = None
            if kind is None:
                name, value = checked_header(pair)
                if type(pair) is not tuple:  # a list; a tuple stays: the key found by identity
                    pair = (name, value)
                kind = _SPECIAL_HEADERS.get(name.lower(), _PLAIN)
                if (len(_CHECKED_PAIRS) < _CHECKED_PAIRS_LIMIT
                        and len(name) + len(value) <= _CHECKED_PAIR_SIZE):
                    _CHECKED_PAIRS[pair] = kind
            elif kind == _PLAIN:
                headers.append(pair)
                continue
            else:
                # A tuple (found in the dict); kept as it is, so the protocol's
                # own look-ups of it (HTTP/1.1's header lines) find it by identity.
                name, value = pair
            if kind:
                special = kind
                if special == _CONTENT_LENGTH:
                    lengths: dict = _CONTENT_LENGTHS
                    length = lengths.get(value)
                    if length is None:
                        if not value.isdigit():
                            raise RuntimeError(
                                f"ASGI app sent an invalid content-length {value!r}")
                        length = int(value)
                        if len(lengths) < _CHECKED_PAIRS_LIMIT and len(value) <= 20:
                            lengths[value] = length
                    if content_length is not None and length != content_length:
                        raise RuntimeError(f"ASGI app sent an invalid content-length {value!r}")
                    content_length = length
                    if status == 204:
                        continue  # a 204 never carries Content-Length
                elif special == _DROPPED:
                    continue
                elif special == _CONNECTION:
                    if _says_close(value):
                        close_connection = True
                    continue
                elif special == _DATE:
                    has_date = True
                else:
                    has_server = True
            headers.append(pair)
        self.status = status
        self.headers = headers
        self._body_discarded = (status == 204 or status == 304
                                or self.scope["method"] == "HEAD")
        self.has_date = has_date
        self.has_server = has_server
        self.close_connection = close_connection
        self._trailers_expected = "trailers" in message and message["trailers"] is True
        if content_length is None:
            self.has_length = False
            self._content_length = None
        else:
            self.has_length = status != 204
            # A body for 204/304 (or HEAD) is never written, so its length is not checked.
            self._content_length = None if self._body_discarded else content_length
        self._phase = _STARTED

    def _accept_trailers(self, message: dict[str, Any]) -> None:
        """`http.response.trailers` (ASGI extension): header fields after the body."""
        if self.disconnected:
            raise ClientDisconnected("the client has disconnected")
        headers = [checked_header(pair) for pair in message.get("headers", ())]
        if self._trailers is None:
            self._trailers = headers
        else:
            self._trailers += headers
        if not message.get("more_trailers", False):
            self.sink.send_trailers(self._trailers)
            self._finish()

    def _accept_early_hint(self, message: dict[str, Any]) -> None:
        """`http.response.early_hint` (ASGI extension): a 103 with Link headers."""
        links = message.get("links", [])
        if not isinstance(links, list) or not all(isinstance(link, bytes) for link in links):
            raise RuntimeError(f"ASGI app sent early-hint links that are not bytes: {links!r}")
        headers = [checked_header((b"link", link)) for link in links]
        if headers and not self.disconnected:
            self.sink.send_informational(103, headers)

    def _accept_push(self, message: dict[str, Any]) -> None:
        """`http.response.push` (ASGI extension): ask the protocol to push a GET of `path`."""
        path = message.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise RuntimeError(f"ASGI app sent a push path that is not an absolute path: "
                               f"{path!r}")
        headers = [checked_header(pair) for pair in message.get("headers", ())]
        if self._phase < _COMPLETE and not self.disconnected:
            self.sink.push(str(path), headers)  # compiled, push takes an exact str

    def _complete(self) -> None:
        """The response is over, sent or not: release its concurrency slot, once."""
        if self._phase < _COMPLETE:
            self._phase = _COMPLETE if self._phase != _AWAITING_START else _UNANSWERED
            if self._slot_held:  # only started streams hold a slot
                self._host.in_flight -= 1
                if self._host.observer is not None:
                    self._host.observer.request_finished()
        if self._waiters:
            self._wake()

    def _finish(self) -> None:
        if self._phase >= _COMPLETE or self._waiters or not self._slot_held:
            self._complete()
        else:  # _complete() for the usual case, inlined: this runs per response
            self._phase = _COMPLETE
            self._host.in_flight -= 1
            if self._host.observer is not None:
                self._host.observer.request_finished()
        if self._host.access_log:
            self._log_access()
        if self._host.stats is not None:  # the admin plane's counters (qactuar/admin)
            self._host.stats.record(self.status or 0, self.scope["http_version"],
                                    self._sent_bytes, self._started_at)
        self.sink.response_done(self)

    def _abort(self) -> None:
        """Cut a response that cannot be completed; the client sees it incomplete."""
        self._complete()
        if self._host.access_log and _STARTED <= self._phase <= _COMPLETE:
            self._log_access()
        if self._host.stats is not None and self.response_started:
            self._host.stats.record(self.status or 0, self.scope["http_version"],
                                    self._sent_bytes, self._started_at)
        self.sink.abort()
        self.sink.response_done(self)

    def _fail_response(self, status: int, text: str) -> None:
        """An error status while nothing is on the wire yet, else an aborted response."""
        if self._phase < _SENDING_BODY:
            self._send_error(status, text)
        elif self._phase < _COMPLETE:
            self._abort()

    def _send_error(self, status: int, text: str) -> None:
        body = text.encode() + b"\n"
        self._phase = _SENDING_BODY
        self.status = status
        self.headers = error_headers(body)
        self.has_length = True
        self.has_date = self.has_server = False
        self.close_connection = True
        self._sent_bytes = len(body)
        if self._host.observer is not None:
            self._host.observer.response_started()
        self.sink.send_head(self, body, True)
        self._finish()

    def _log_access(self) -> None:
        scope = self.scope
        log_access(scope["client"], scope["method"], scope["path"], scope["query_string"],
                   scope["http_version"], self.status, self._sent_bytes,
                   time.monotonic() - self._started_at)

    def _cancel_task(self) -> None:
        task = self.task
        if task is not None:
            task.cancel()
            if not self._app_running:
                # Cancelled before its first step, _run never runs to discard it.
                self._host.tasks.discard(task)
        elif not self._app_running:
            self._start_cancelled = True  # waiting in host.pending_starts: never started

    def _wake(self) -> None:
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _run(self) -> None:
        self._app_running = True
        try:
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if self._phase < _COMPLETE:
                self._abort()
            return
        except BaseException as exc:  # an app bug, even SystemExit: the server survives it
            self._app_failed(exc)
            return
        finally:
            if self.task is not None:  # None: an eager first step ran to the end
                self._host.tasks.discard(self.task)
            if self.disconnected:
                self._complete()
        if self._phase < _COMPLETE:
            if self._input_closed:
                # receive() said http.disconnect (the client half-closed, as a
                # closing client does first): stopping is the app's right.
                server_logger.debug("app stopped after the client closed its side: %s %s",
                                    self.scope["method"], _log_path(self.scope))
                self._abort()
                return
            what = "starting" if self._phase == _AWAITING_START else "finishing"
            server_logger.error("ASGI app returned without %s its response for %s %s", what,
                                self.scope["method"], _log_path(self.scope))
            self._fail_response(500, "Internal Server Error")

    def _app_failed(self, exc: BaseException) -> None:
        if self.disconnected:
            server_logger.debug("app raised %s after the client disconnected",
                                type(exc).__name__)
            return
        exception_logger.error("exception in ASGI app for %s %s", self.scope["method"],
                               _log_path(self.scope), exc_info=exc)
        self._fail_response(500, "Internal Server Error")


def _start_pending(host: ServerState) -> None:
    """Start the HTTP/1.1 requests of this loop pass, each app's first step eagerly.

    Run as a ready callback, where their Tasks' first steps would have run, so
    their responses are made and written in the same batch.  A request started
    meanwhile (a pipelined one, once its predecessor is answered) waits for the
    next pass, as a new Task would: a long pipeline does not hold the loop.
    """
    streams = host.pending_starts
    host.pending_starts = []
    loop = host.loop
    factory = loop.get_task_factory()  # asked once a pass, not once a request
    stream: HTTPStream
    for stream in streams:
        if stream._start_cancelled:
            continue
        if factory is None:
            stream._start_eagerly(loop)
        else:  # the app installed its own factory: its tasks, as it makes them
            stream._keep_task(loop.create_task(stream._run()))


def _plain_message(message: Any) -> dict[str, Any]:
    """An app's message that is not exactly a dict (a subclass, a mapping proxy), as one."""
    if not isinstance(message, Mapping):
        raise RuntimeError(f"ASGI app sent a message that is not a dict: {message!r}")
    return dict(message)


def _says_close(connection: bytes) -> bool:
    """Whether a Connection field value has the `close` token."""
    return b"close" in [token.strip() for token in connection.lower().split(b",")]


def _log_path(scope: dict[str, Any]) -> str:
    return escape(scope["path"])
