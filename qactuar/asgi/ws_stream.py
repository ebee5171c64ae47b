"""ONE WebSocket session on the ASGI side: the scope, `receive()`, `send()`, the app task.

A wire protocol (WebSocket over HTTP/1.1 now, over HTTP/2 later) creates a
`WebSocketSession` once a valid opening handshake has arrived, hands it each
complete message (`message_received`) and tells it when the connection is
over (`closed`).  The session checks what the app sends and calls back into
the protocol through the small `WebSocketSink` interface: accept, send a
message, close, or refuse the handshake with an HTTP response.  This module
never touches bytes on the wire and never sees a frame.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from typing import Any, Protocol

# The header rules are HTTP's, shared with the HTTP stream.
from qactuar.asgi import ASGI_SPEC_VERSION
from qactuar.asgi.http_stream import ClientDisconnected, checked_header
from qactuar.logs import escape, exception_logger, log_access, server_logger

CONNECT = {"type": "websocket.connect"}
FORBIDDEN_BODY = b"Forbidden: the application refused the WebSocket handshake\n"
ERROR_BODY = b"Internal Server Error\n"
TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")

# Close codes an application may send (RFC 6455 7.4.1 and the IANA registry);
# 1004-1006 and 1015 are reserved for the endpoints' own use.
_APP_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015)))

# A subprotocol is an HTTP token (RFC 6455 4.3, RFC 9110 5.6.2); it goes into a header.
_is_token = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+").fullmatch

# Where the session is in its life, as seen by the app.
HANDSHAKE = 0  # connect delivered or pending; no answer yet
OPEN = 1  # accepted
CLOSING = 2  # the app sent websocket.close
RESPONSE = 3  # the app started its own HTTP response (websocket.http.response)
DONE = 4  # the handshake was refused or the session is over


class WebSocketSink(Protocol):
    """What a session needs from the protocol that carries it."""

    writing_paused: bool
    reading_paused: bool

    def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> None: ...
    def send_message(self, data: str | bytes) -> bool: ...
    def close(self, code: int, reason: str) -> None: ...
    def send_http_response(self, status: int, headers: list[tuple[bytes, bytes]],
                           body: bytes) -> None: ...
    def abort(self) -> None: ...
    def message_consumed(self) -> None: ...
    async def wait_writable(self) -> None: ...


class SessionHost(Protocol):
    loop: asyncio.AbstractEventLoop
    access_log: bool
    tasks: set[asyncio.Task[None]]


def websocket_scope(http_scope: dict[str, Any], subprotocols: list[str]) -> dict[str, Any]:
    """The `websocket` scope for a handshake whose request was routed as `http_scope`."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": ASGI_SPEC_VERSION},
        "http_version": http_scope["http_version"],
        "scheme": "wss" if http_scope["scheme"] == "https" else "ws",
        "path": http_scope["path"],
        "raw_path": http_scope["raw_path"],
        "query_string": http_scope["query_string"],
        "root_path": http_scope["root_path"],
        "headers": http_scope["headers"],
        "client": http_scope["client"],
        "server": http_scope["server"],
        "subprotocols": subprotocols,
        "extensions": {"websocket.http.response": {}},
    }
    if "state" in http_scope:
        scope["state"] = http_scope["state"]
    return scope


def check_headers(pairs: Any) -> list[tuple[bytes, bytes]]:
    """The app's extra response headers, refused when malformed or holding control bytes."""
    headers: list[tuple[bytes, bytes]] = []
    for pair in pairs:
        name, value = checked_header(pair)
        headers.append((name.lower(), value))
    return headers


async def not_found_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """No app is mounted at the handshake's path: 404, as for HTTP."""
    body = b"Not Found: no application is mounted at this path\n"
    await send({"type": "websocket.http.response.start", "status": 404,
                "headers": [TEXT_PLAIN]})
    await send({"type": "websocket.http.response.body", "body": body})


class WebSocketSession:
    """The app's view of one WebSocket connection."""

    def __init__(self, sink: WebSocketSink, scope: dict[str, Any], app: Any,
                 host: SessionHost) -> None:
        self.sink = sink
        self.scope = scope
        self.app = app
        self._host = host
        self.phase = HANDSHAKE
        self._connect_delivered = False
        self._messages: deque[str | bytes] = deque()
        self.buffered = 0  # bytes of messages the app has not received yet
        self._disconnect: dict[str, Any] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._response_status = 0
        self._response_headers: list[tuple[bytes, bytes]] = []
        self._response_body: list[bytes] = []
        self._started_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None

    # -- called by the protocol -------------------------------------------

    @property
    def disconnected(self) -> bool:
        return self._disconnect is not None

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._loop = self._host.loop  # the server's loop, as HTTPStream uses
        task = self._loop.create_task(self._run())
        self.task = task
        self._host.tasks.add(task)
        task.add_done_callback(self._host.tasks.discard)

    def message_received(self, data: str | bytes) -> None:
        if self.phase != OPEN:
            return  # the app has closed: what the peer still sends is dropped
        self._messages.append(data)
        self.buffered += len(data)
        self._wake()

    def closed(self, code: int, reason: str) -> None:
        """The connection is over: the close handshake finished or the peer went away."""
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self._wake()

    # -- the ASGI callables ------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if not self._connect_delivered:
            self._connect_delivered = True
            return CONNECT
        while True:
            if self._messages:
                data = self._messages.popleft()
                self.buffered -= len(data)
                if self.sink.reading_paused:
                    self.sink.message_consumed()
                if type(data) is str:
                    return {"type": "websocket.receive", "text": data}
                return {"type": "websocket.receive", "bytes": data}
            if self._disconnect is not None:
                return self._disconnect
            # Apps may call receive() from several tasks; each waiter is woken.
            waiter = self._loop.create_future()  # type: ignore[union-attr]
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:  # cancelled while waiting
                    self._waiters.remove(waiter)
                raise

    async def send(self, message: dict[str, Any]) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "websocket.send":
            payload = self._checked_payload(message)
            sink = self.sink
            if sink.writing_paused:
                # The peer is not reading: wait before adding to what it owes.
                await sink.wait_writable()
            if not sink.send_message(payload):
                raise ClientDisconnected("the WebSocket connection is closing")
        elif kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self._close(message)
        elif kind == "websocket.http.response.start":
            self._start_response(message)
        elif kind == "websocket.http.response.body":
            self._response_body_part(message)
        else:
            raise RuntimeError(f"ASGI app sent an unexpected message: {kind!r}")

    # -- the messages ------------------------------------------------------

    def _accept(self, message: dict[str, Any]) -> None:
        self._expect_handshake("websocket.accept")
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and (not isinstance(subprotocol, str)
                                        or not _is_token(subprotocol)):
            raise RuntimeError(f"ASGI app sent an invalid subprotocol {subprotocol!r}")
        headers = check_headers(message.get("headers", ()))
        self.phase = OPEN
        self.sink.accept(subprotocol, headers)
        self._log(101)

    def _checked_payload(self, message: dict[str, Any]) -> str | bytes:
        """The text or bytes of a `websocket.send` the app may send now."""
        if self._disconnect is not None:
            raise ClientDisconnected("the WebSocket client has disconnected")
        if self.phase != OPEN:
            raise RuntimeError("ASGI app sent 'websocket.send' "
                               + ("before 'websocket.accept'" if self.phase == HANDSHAKE
                                  else "after 'websocket.close'" if self.phase == CLOSING
                                  else "on a refused handshake"))
        text = message.get("text")
        data = message.get("bytes")
        if (text is None) == (data is None):
            raise RuntimeError("ASGI app sent 'websocket.send' without exactly one of "
                               "'bytes' and 'text'")
        if text is not None:
            if not isinstance(text, str):
                raise RuntimeError(f"ASGI app sent 'text' of type {type(text).__name__}")
            payload: str | bytes = text
        else:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise RuntimeError(f"ASGI app sent 'bytes' of type {type(data).__name__}")
            payload = bytes(data)
        return payload

    def _close(self, message: dict[str, Any]) -> None:
        if self.phase == HANDSHAKE:
            self.phase = DONE
            self._refuse(403, FORBIDDEN_BODY)
            return
        if self._disconnect is not None or self.phase == DONE:
            return  # already over: closing again changes nothing
        if self.phase != OPEN:
            raise RuntimeError("ASGI app sent 'websocket.close' "
                               + ("twice" if self.phase == CLOSING
                                  else "after starting an HTTP response"))
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        if not isinstance(code, int) or isinstance(code, bool) or not (
                code in _APP_CLOSE_CODES or 3000 <= code <= 4999):
            raise RuntimeError(f"ASGI app sent an invalid close code {code!r}")
        if not isinstance(reason, str) or len(reason.encode()) > 123:
            raise RuntimeError("ASGI app sent a close reason that is not a string of at most "
                               "123 UTF-8 bytes")
        self.phase = CLOSING
        self.sink.close(code, reason)

    def _start_response(self, message: dict[str, Any]) -> None:
        self._expect_handshake("websocket.http.response.start")
        status = message.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599 \
                or status == 101:
            raise RuntimeError(f"ASGI app sent an invalid status {status!r}")
        self._response_headers = check_headers(message.get("headers", ()))
        self._response_status = status
        self.phase = RESPONSE

    def _response_body_part(self, message: dict[str, Any]) -> None:
        if self.phase != RESPONSE:
            raise RuntimeError("ASGI app sent 'websocket.http.response.body' without "
                               "'websocket.http.response.start'")
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise RuntimeError(f"ASGI app sent a body of type {type(body).__name__}")
        self._response_body.append(bytes(body))
        if not message.get("more_body", False):
            # A refusal is small: it is sent whole, with its length.
            self.phase = DONE
            body = b"".join(self._response_body)
            self.sink.send_http_response(self._response_status, self._response_headers, body)
            self._log(self._response_status)

    def _expect_handshake(self, kind: str) -> None:
        if self._disconnect is not None and self.phase == HANDSHAKE:
            raise ClientDisconnected("the WebSocket client has disconnected")
        if self.phase != HANDSHAKE:
            raise RuntimeError(f"ASGI app sent {kind!r} after the handshake was answered")

    # -- the app task ------------------------------------------------------

    async def _run(self) -> None:
        host = self._host
        host.in_flight += 1  # a session counts against LIMIT_CONCURRENCY while its app runs
        try:
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if self.phase != DONE and not self.disconnected:
                self.sink.abort()
            return
        except BaseException as exc:  # an app bug, even SystemExit: the server survives it
            self._app_failed(exc)
            return
        finally:
            host.in_flight -= 1
        self._app_returned()

    def _app_returned(self) -> None:
        if self.phase == HANDSHAKE:
            self.phase = DONE
            if not self.disconnected:
                self._refuse(403, FORBIDDEN_BODY)  # never accepted
        elif self.phase == RESPONSE:
            server_logger.error("ASGI app returned without finishing its HTTP response to the "
                                "WebSocket handshake for %s", escape(self.scope["path"]))
            self.phase = DONE
            self.sink.abort()
        elif self.phase == OPEN:
            self.phase = CLOSING
            if not self.disconnected:
                self.sink.close(1000, "")

    def _app_failed(self, exc: BaseException) -> None:
        if self.disconnected:
            server_logger.debug("WebSocket app raised %s after the client disconnected",
                                type(exc).__name__)
            return
        exception_logger.error("exception in ASGI app for WebSocket %s",
                               escape(self.scope["path"]), exc_info=exc)
        if self.phase == HANDSHAKE:
            self.phase = DONE
            self._refuse(500, ERROR_BODY)
        elif self.phase == RESPONSE:
            self.phase = DONE
            self.sink.abort()
        elif self.phase == OPEN:
            self.phase = CLOSING
            self.sink.close(1011, "")

    def _refuse(self, status: int, body: bytes) -> None:
        self.sink.send_http_response(status, [TEXT_PLAIN], body)
        self._log(status)

    def _log(self, status: int) -> None:
        if self._host.access_log:
            scope = self.scope
            log_access(scope["client"], "GET", scope["path"], scope["query_string"],
                       scope["http_version"], status, 0, time.monotonic() - self._started_at)

    def _wake(self) -> None:
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
