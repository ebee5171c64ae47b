"""Tornado on Qactuar: a `RequestHandler` subclass or a whole `Application` as an ASGI app.

    from qactuar.contrib.tornado import TornadoApp
    app = TornadoApp(tornado.web.Application([(r"/", MainHandler)]))   # or TornadoApp(MainHandler)

Owns the translation of ONE ASGI HTTP cycle into what Tornado's HTTP server
would have done: an `HTTPServerRequest`, the `HTTPMessageDelegate` calls
(`headers_received`, `data_received`, `finish`, `on_connection_close`) that
`Application.find_handler` returns, and an `HTTPConnection` whose
`write_headers`/`write`/`finish` become `http.response.*` messages, each
returning a future that resolves when the server took the message (so
`await self.flush()` waits for a slow client, as on Tornado's own server).

Must not: touch sockets or bytes on the wire, or import Qactuar's server;
this is an ordinary ASGI app that happens to ship with Qactuar.

What cannot map to ASGI (see the README's "Tornado" section): WebSocketHandler
and `detach()` (no raw stream), `request.connection.stream` and
`get_ssl_certificate()`, custom reason phrases (ASGI carries the status code
only), 1xx statuses, and the HTTPServer's own settings (`xheaders`,
`max_body_size`, `decompress_request`, timeouts): Qactuar's settings apply.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPInputError,
    HTTPMessageDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
)
from tornado.iostream import StreamClosedError
from tornado.log import app_log, gen_log
from tornado.web import Application, RequestHandler

__all__ = ["TornadoApp"]

Scope = dict[str, Any]
Message = dict[str, Any]

_END = {"type": "http.response.body", "body": b"", "more_body": False}
# Characters Tornado's routes see unescaped in a path (RFC 3986 pchar and "/").
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


class TornadoApp:
    """An ASGI 3 app serving a Tornado `Application`, or one `RequestHandler` on every path.

    `handler_kwargs` go to the handler's `initialize()`, and `settings` to the
    `Application` made around a lone handler (both only for a handler class).
    """

    def __init__(self, target: type[RequestHandler] | Application,
                 handler_kwargs: dict[str, Any] | None = None, **settings: Any) -> None:
        if isinstance(target, Application):
            if handler_kwargs or settings:
                raise TypeError("handler_kwargs and settings are for a RequestHandler class; "
                                "an Application has its own")
            self.application = target
        elif isinstance(target, type) and issubclass(target, RequestHandler):
            self.application = Application([(r".*", target, handler_kwargs or {})], **settings)
        else:
            raise TypeError(f"TornadoApp wraps a tornado.web.Application or a RequestHandler "
                            f"subclass, not {target!r}")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await _serve_http(self.application, scope, receive, send)
        elif kind == "lifespan":
            await _serve_lifespan(receive, send)
        elif kind == "websocket":
            # Tornado's WebSocketHandler needs the raw stream; refuse the
            # handshake the ASGI way (the server answers 403).
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise RuntimeError(f"TornadoApp cannot serve ASGI scope type {kind!r}")


async def _serve_lifespan(receive: Any, send: Any) -> None:
    """Tornado apps have no startup or shutdown hooks: both simply complete."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _RequestContext:
    """What `HTTPServerRequest` reads from `connection.context`: the client and the scheme."""

    def __init__(self, scope: Scope) -> None:
        client = scope.get("client")
        self.address = tuple(client) if client else None
        self.remote_ip = client[0] if client else "0.0.0.0"  # as Tornado does for Unix sockets
        self.protocol = scope.get("scheme", "http")

    def __str__(self) -> str:
        return self.remote_ip


class ASGIConnection(HTTPConnection):
    """Tornado's `HTTPConnection` for one request: writes are queued as ASGI messages.

    The ASGI call drains the queue with `next_message()` and reports back with
    `sent()`; each write's future resolves once its message was sent, or fails
    with `StreamClosedError` when the client is gone, as on Tornado's server.
    """

    def __init__(self, scope: Scope) -> None:
        self.context = _RequestContext(scope)
        self.max_body_size: int | None = None
        self.closed = False
        self.response_sent = False
        self._headers_written = False
        self._finished = False
        self._outbox: deque[tuple[Message, asyncio.Future[None] | None]] = deque()
        # The write being sent: a send() that fails or is cancelled must fail it too.
        self._in_flight: asyncio.Future[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._close_callback: Any = None
        self._failure: BaseException | None = None

    # -- Tornado's side ----------------------------------------------------

    def set_close_callback(self, callback: Any) -> None:
        self._close_callback = callback

    def set_max_body_size(self, max_body_size: int) -> None:
        """Tornado's per-request body limit (streaming handlers set it in prepare())."""
        self.max_body_size = max_body_size

    def set_body_timeout(self, timeout: float) -> None:
        """Accepted for compatibility; Qactuar's own timeouts bound slow bodies."""

    def write_headers(self, start_line: RequestStartLine | ResponseStartLine,
                      headers: HTTPHeaders, chunk: bytes | None = None) -> asyncio.Future[None]:
        if not isinstance(start_line, ResponseStartLine):
            raise TypeError("a server connection writes responses only")
        if self._headers_written:
            raise RuntimeError("response headers were already written")
        self._headers_written = True
        pairs = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                 for name, value in headers.get_all()]
        future = self._queue({"type": "http.response.start", "status": start_line.code,
                              "headers": pairs})
        if chunk:
            future = self.write(chunk)
        return future

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        if not self._headers_written:
            raise RuntimeError("write() before write_headers()")
        if self._finished:
            raise RuntimeError("write() after finish()")
        return self._queue({"type": "http.response.body", "body": bytes(chunk),
                            "more_body": True})

    def finish(self) -> None:
        if self._finished:
            return
        if not self._headers_written:
            raise RuntimeError("finish() before write_headers()")
        self._finished = True
        if not self.closed:
            self._outbox.append((_END, None))
            self._wake()

    # -- the ASGI call's side ----------------------------------------------

    async def next_message(self) -> tuple[Message, asyncio.Future[None] | None] | None:
        """The next message to send (a final body merged with its end), None once closed."""
        while not self._outbox:
            if self._failure is not None:
                raise self._failure
            if self.closed:
                return None
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        message, future = self._outbox.popleft()
        if (message.get("more_body") and self._outbox and self._outbox[0][0] is _END):
            # Tornado's finish() writes its last chunk, then ends: one message.
            self._outbox.popleft()
            message = {**message, "more_body": False}
        self._in_flight = future
        return message, future

    def sent(self, message: Message, future: asyncio.Future[None] | None) -> None:
        if not message.get("more_body", True) and message["type"] == "http.response.body":
            self.response_sent = True
        self._in_flight = None
        if future is not None and not future.done():
            future.set_result(None)

    def notify_close(self) -> None:
        """Run the handler's close callback (`on_connection_close`), once."""
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            _call_logged(callback)

    def close(self, notify: bool = True) -> None:
        """The client is gone (or the request was cancelled): fail the handler's writes,
        and with `notify` run its close callback."""
        if self.closed or self.response_sent:
            return
        self.closed = True
        if notify:
            self.notify_close()
        else:
            self._close_callback = None
        if self._in_flight is not None and not self._in_flight.done():
            _fail(self._in_flight)
        self._in_flight = None
        while self._outbox:
            _, future = self._outbox.popleft()
            if future is not None:
                _fail(future)
        self._wake()

    def fail(self, error: BaseException) -> None:
        """Feeding the request body to Tornado raised: the ASGI call re-raises it."""
        self._failure = error
        self._wake()

    def _queue(self, message: Message) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed:
            _fail(future)
        else:
            self._outbox.append((message, future))
            self._wake()
        return future

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


def _call_logged(callback: Any) -> None:
    """Run a handler's close hook; its exception is logged, as Tornado's server does."""
    try:
        callback()
    except Exception:
        app_log.error("Uncaught exception in on_connection_close", exc_info=True)


def _fail(future: asyncio.Future[None]) -> None:
    future.set_exception(StreamClosedError())
    future.exception()  # retrieved: a handler that never awaits it logs nothing


def _request_target(scope: Scope) -> tuple[str, str]:
    """Tornado's `uri` (the full target) and `path` (below root_path, still %-encoded).

    Tornado matches its routes against the encoded path and unescapes path
    arguments itself, so the raw bytes are kept where the scope has them.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    relative = path[len(root_path):] if root_path and path.startswith(root_path) else path
    raw: bytes | None = scope.get("raw_path")
    raw_relative = None
    if raw is not None and raw.startswith(b"/"):
        raw_text = raw.decode("latin-1")
        decoded = unquote_to_bytes(raw).decode("utf-8", "replace")
        if decoded == path and raw_text.startswith(root_path):
            raw_relative = raw_text[len(root_path):]  # raw_path carries the prefix
        elif decoded == relative:
            raw_relative = raw_text  # a proxy stripped the prefix (ROOT_PATH)
    if raw_relative is None:
        raw_relative = quote(relative, safe=_PATH_SAFE)
    if not raw_relative.startswith("/") and raw_relative != "*":
        raw_relative = "/" + raw_relative
    query = scope.get("query_string", b"").decode("latin-1")
    uri = quote(root_path, safe=_PATH_SAFE) + raw_relative
    if query:
        uri += "?" + query
    return uri, raw_relative


def _build_request(scope: Scope, connection: ASGIConnection) -> HTTPServerRequest:
    uri, path = _request_target(scope)
    version = "HTTP/" + scope.get("http_version", "1.1")
    headers = HTTPHeaders()
    for name, value in scope["headers"]:
        headers.add(name.decode("latin-1"), value.decode("latin-1"))
    server = scope.get("server")
    if "Host" not in headers and version != "HTTP/1.0" and server:
        headers["Host"] = f"{server[0]}:{server[1]}" if server[1] else server[0]
    request = HTTPServerRequest(start_line=RequestStartLine(scope["method"], uri, version),
                                headers=headers, connection=connection)
    request.path = path
    request.asgi_scope = scope  # type: ignore[attr-defined]  # root_path, state, extensions
    return request


async def _serve_http(application: Application, scope: Scope, receive: Any,
                      send: Any) -> None:
    connection = ASGIConnection(scope)
    try:
        request = _build_request(scope, connection)
    except HTTPInputError as exc:
        # Tornado's server answers these with 400 before any handler runs.
        gen_log.info("Malformed HTTP request from %s: %s", connection.context, exc)
        await _send_plain_error(send, 400, "Bad Request")
        return
    reader = _RequestReader(application.find_handler(request), request, connection)
    reading = asyncio.ensure_future(reader.run(receive))
    reading.add_done_callback(reader.done)
    started = False
    try:
        while True:
            try:
                item = await connection.next_message()
            except BodyTooLarge:
                if not started:
                    await _send_plain_error(send, 413, "Payload Too Large")
                return
            if item is None:
                return  # the client left before the response was complete
            message, future = item
            try:
                await send(message)
            except OSError:
                return  # the client went away while we were writing
            started = True
            connection.sent(message, future)
            if connection.response_sent:
                return
    finally:
        if not reading.done():
            reading.cancel()
        if not connection.response_sent:
            reader.client_gone()  # cancelled, the client left or sending failed


class BodyTooLarge(Exception):
    """The request body is over the limit a handler set with `set_max_body_size()`."""


class _RequestReader:
    """Feeds the request body to Tornado's delegate as it arrives, then watches for the
    client leaving.  Like Tornado's HTTP1Connection, a client gone mid-body is told to
    the delegate (`on_connection_close`), one gone after it to the handler's close callback.
    """

    def __init__(self, delegate: HTTPMessageDelegate, request: HTTPServerRequest,
                 connection: ASGIConnection) -> None:
        self.delegate = delegate
        self.request = request
        self.connection = connection
        self.body_delivered = False

    async def run(self, receive: Any) -> None:
        request, connection = self.request, self.connection
        # A streaming handler runs prepare() here, and may set a body limit.
        prepared = self.delegate.headers_received(
            RequestStartLine(request.method, request.uri, request.version), request.headers)
        if prepared is not None:
            await prepared
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.client_gone()
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            limit = connection.max_body_size
            if limit is not None and received > limit:
                gen_log.info("request body from %s over the handler's limit of %d bytes",
                             connection.context, limit)
                connection.fail(BodyTooLarge(limit))  # first: the writer answers 413
                self.client_gone()
                return
            if chunk and not connection.closed:
                flow = self.delegate.data_received(chunk)
                if flow is not None:
                    await flow
            if not message.get("more_body", False):
                break
        if connection.closed:
            return
        self.body_delivered = True
        self.delegate.finish()
        while not connection.response_sent:
            if (await receive())["type"] == "http.disconnect":
                # The handler hears of it now, as on Tornado's server, but its writes
                # still go out: a client that only half-closed is reading the answer,
                # and for one that is gone, send() fails and the writes fail with it.
                connection.notify_close()
                return

    def client_gone(self) -> None:
        connection = self.connection
        if connection.closed or connection.response_sent:
            return
        if not self.body_delivered:
            _call_logged(self.delegate.on_connection_close)
        connection.close(notify=self.body_delivered)

    def done(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.connection.fail(task.exception())  # type: ignore[arg-type]


async def _send_plain_error(send: Any, status: int, reason: str) -> None:
    body = f"<html><title>{status}: {reason}</title><body>{status}: {reason}</body></html>"
    encoded = body.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=UTF-8"),
                            (b"content-length", str(len(encoded)).encode())]})
    await send({"type": "http.response.body", "body": encoded})
