"""RFC 6455 WebSocket on an upgraded HTTP/1.1 connection: handshake, frames, close.

Owns the bytes once `http1.py` has parsed an upgrade request and handed the
transport over: the checks of the opening handshake, the 101 answer (or an
HTTP answer refusing it), frames in and out, UTF-8 of text messages,
keep-alive pings, the close handshake and its timeout, and back-pressure both
ways.  Framing, masking, control-frame rules, size limits and
permessage-deflate come from the sans-IO core of the `websockets` package
(measured 3.5 to 4 times faster per message than wsproto's: `python -m
benchmarks.ws_engines`, figures in the README).

Never builds ASGI messages: it calls the connection's `WebSocketSession`.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import hashlib
import logging
import struct
from typing import TYPE_CHECKING, Any

from websockets.exceptions import InvalidHandshake
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Opcode, apply_mask  # apply_mask: the package's C speedup
from websockets.headers import build_extension, parse_extension
from websockets.protocol import Protocol as FrameEngine
from websockets.protocol import Side, State

from qactuar.asgi.ws_stream import OPEN, WebSocketSession, not_found_app, websocket_scope
from qactuar.logs import server_logger
from qactuar.protocols.write_waiters import WriteWaiters
from qactuar.protocols.ws_handshake import (  # noqa: F401  (also this module's)
    find_control_byte,
    handshake_problem,
    wants_websocket,
)

if TYPE_CHECKING:
    from qactuar.server_state import ServerState

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG
_pack_short = struct.Struct("!BB").pack
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_OPEN = State.OPEN
# First byte of a one-frame message: FIN, no reserved bits, opcode text or binary.
_WHOLE_TEXT, _WHOLE_BINARY = 0x81, 0x82
# Headers of the 101 answer that the server sets itself.
_OWN_HEADERS = frozenset((b"upgrade", b"connection", b"sec-websocket-accept",
                          b"sec-websocket-extensions", b"sec-websocket-protocol",
                          b"content-length", b"transfer-encoding"))

# The engine logs every frame at DEBUG and each closed connection at INFO;
# the server logs what matters itself, so only its warnings are let through.
_engine_logger = logging.getLogger("qactuar.websocket.frames")
_engine_logger.setLevel(logging.WARNING)


def offered_subprotocols(headers: list[tuple[bytes, bytes]]) -> list[str]:
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            offered.extend(token.strip() for token in value.decode("latin-1").split(",")
                           if token.strip())
    return offered


def accept_value(headers: list[tuple[bytes, bytes]]) -> bytes:
    key = next(value.strip() for name, value in headers if name == b"sec-websocket-key")
    return base64.b64encode(hashlib.sha1(key + ACCEPT_GUID).digest())


def negotiate_extensions(headers: list[tuple[bytes, bytes]]) -> tuple[str | None,
                                                                        list[Extension]]:
    """Accept permessage-deflate if the client offers it; decline everything else."""
    factory = ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5})
    accepted: list[Extension] = []
    answers = []
    for name, value in headers:
        if name != b"sec-websocket-extensions":
            continue
        try:
            offers = parse_extension(value.decode("latin-1"))
        except InvalidHandshake:
            continue  # a malformed offer is declined, as an unknown one is
        for ext_name, params in offers:
            if ext_name != factory.name or accepted:
                continue
            try:
                response_params, extension = factory.process_request_params(params, accepted)
            except InvalidHandshake:
                continue
            answers.append((ext_name, response_params))
            accepted.append(extension)
    return (build_extension(answers) if answers else None), accepted


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection; also the `WebSocketSink` of its session."""

    ends_connection = True  # connection_lost is the end of the client's connection

    def __init__(self, state: ServerState, http_scope: dict[str, Any], app: Any) -> None:
        self.state = state
        self.config = state.config
        self.loop = state.loop
        self.transport: asyncio.Transport | None = None
        self.writing_paused = False
        self._recv_limit = state.limits.recv_bytes
        self._write_waiters = WriteWaiters()
        self.reading_paused = False
        self._closed = False
        self._request_headers: list[tuple[bytes, bytes]] = http_scope["headers"]
        scope = websocket_scope(http_scope, offered_subprotocols(self._request_headers))
        if app is state.not_found_app:
            app = not_found_app  # the HTTP one cannot answer a websocket scope
        self.session = WebSocketSession(self, scope, app, state)
        self._engine: FrameEngine | None = None
        self._early = bytearray()  # bytes that came before the app accepted
        self._failed = False
        # Incoming bytes reach the engine as whole frames (see _receive), so the start of
        # a frame still arriving waits here; `_direct` ends that once the engine must
        # see every byte as it comes (an extension, a close, a frame over the limit).
        self._pending = bytearray()
        self._pending_frame_size = 0  # the whole frame's size, once its header is here
        self._in_fragments = False  # a fragmented message has begun and not ended
        self._direct = False
        self._compressing = False  # permessage-deflate was agreed: the engine frames
        self._max_size = state.limits.ws_max_size
        # The message being received.
        self._parts: list[Any] = []
        self._decoder: Any = None
        # Timers: keep-alive ping, its pong deadline, the close handshake.
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_payload = b""
        self._ping_count = 0

    def take_over(self, transport: asyncio.Transport, rest: bytes, reading_paused: bool) -> None:
        """Serve `transport` from now on; `rest` came after the request head."""
        self.transport = transport
        self.reading_paused = reading_paused
        self.state.connections.add(self)
        self._early += rest
        self.session.start()
        self._resume_reading()

    # -- connection events ---------------------------------------------------

    def data_received(self, data: bytes) -> None:
        engine = self._engine
        if engine is None:
            # The app has not answered the handshake: hold a bounded amount.
            self._early += data
            if len(self._early) > self._max_size:
                self._pause_reading()
            return
        if self._direct:
            engine.receive_data(data)
            self._handle_events(engine)
        else:
            self._receive(engine, data)

    def eof_received(self) -> bool | None:
        engine = self._engine
        if engine is not None:
            if self._pending:  # a frame cut short: the engine reports it (1006)
                engine.receive_data(bytes(self._pending))
                self._pending.clear()
            engine.receive_eof()
            self._handle_events(engine)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.state.connections.discard(self)
        if self.ends_connection and self.state.observer is not None:
            self.state.observer.connection_closed()
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._write_waiters.release()
        code, reason = 1006, ""
        engine = self._engine
        if engine is not None:
            # What the peer said, else what we said (a limit, a timeout), else abnormal.
            close = engine.close_rcvd or engine.close_sent
            if close is not None:
                code, reason = close.code, close.reason
        self.session.closed(code, reason)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._write_waiters.release()
        self._resume_reading()

    def shutdown(self) -> None:
        """Server shutdown: close open sessions with 1001 (going away)."""
        engine = self._engine
        if engine is not None and engine.state is State.OPEN and not self._closed:
            engine.send_close(1001, "server shutting down")
            self._closing(engine)

    # -- frames in -------------------------------------------------------------

    def _receive(self, engine: FrameEngine, data: bytes) -> None:
        """Take in `data` frame by frame, reading the common frame without the engine.

        A message in one masked frame of at most the size limit, while the connection
        is open and no fragmented message is under way, is unmasked and delivered
        here: the engine would run the same checks through a generator, a Frame object
        and an enum look-up per message (about 4.5 of the 14 us a 64-byte echo costs).
        Every other frame, and any frame whose first byte or mask bit differs, goes to
        the engine whole, so the engine is always at a frame boundary when a common
        frame comes next and its own checks (opcodes, reserved bits, masking, control
        frames, continuation order) still see every frame they would have seen.
        """
        pending = self._pending
        if pending:
            pending += data
            if len(pending) < self._pending_frame_size:
                return  # a large frame still arriving: no copy, no parse until it is whole
            data = bytes(pending)
            pending.clear()
            self._pending_frame_size = 0
        session = self.session
        end = len(data)
        start = 0
        # What the engine's state allows; read again after each frame it is given.
        is_open = engine.state is _OPEN
        engine_used = False
        while end - start >= 2:
            second = data[start + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                head = 4
                if end - start < 4:
                    break
                length = (data[start + 2] << 8) | data[start + 3]
            elif length == 127:
                head = 10
                if end - start < 10:
                    break
                length = int.from_bytes(data[start + 2:start + 10], "big")
            if length > self._max_size or not is_open:
                # Over the limit (the engine closes with 1009) or the connection is
                # closing: from here on the engine reads every byte itself.
                self._direct = True
                engine.receive_data(data[start:])
                self._deliver_events(engine)
                engine_used = True
                start = end
                break
            if second & 0x80:
                head += 4  # the mask
            stop = start + head + length
            if stop > end:
                self._pending_frame_size = stop - start  # the rest has not arrived yet
                break
            first = data[start]
            if (first in (_WHOLE_TEXT, _WHOLE_BINARY) and second & 0x80
                    and not self._in_fragments):
                payload = apply_mask(data[start + head:stop], data[start + head - 4:start + head])
                if not self._whole_message(engine, first == _WHOLE_TEXT, payload):
                    is_open, engine_used = False, True  # the engine fails the connection
            else:
                # A fragmented message starts with a text or binary frame without FIN
                # and ends with a continuation frame with FIN (control frames may come
                # between): until then a new message is the engine's protocol error.
                if first & 0x0F < 3:  # continuation, text or binary
                    self._in_fragments = not first & 0x80
                engine.receive_data(data[start:stop])
                self._deliver_events(engine)
                engine_used = True
                is_open = engine.state is _OPEN
            start = stop
        if start < end:
            pending += data[start:]
        if engine_used:  # only the engine writes while reading (pongs, close frames)
            self._flush(engine)
        if self.writing_paused or session.buffered > self._recv_limit:
            self._pause_if_behind(engine)

    def _handle_events(self, engine: FrameEngine) -> None:
        self._deliver_events(engine)
        self._flush(engine)
        self._pause_if_behind(engine)

    def _whole_message(self, engine: FrameEngine, is_text: bool, data: Any) -> bool:
        """Hand the app a message that came in one frame; False if its text is not UTF-8
        (the connection is then failed with 1007)."""
        if not is_text:
            self.session.message_received(bytes(data))
            return True
        try:
            self.session.message_received(str(data, "utf-8"))
        except UnicodeDecodeError:
            self._fail(engine, 1007, "invalid UTF-8 in a text message")
            return False
        return True

    def _deliver_events(self, engine: FrameEngine) -> None:
        for frame in engine.events_received():
            if self._failed:
                break
            opcode = frame.opcode
            if opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                if frame.fin and opcode is not _CONT:
                    self._whole_message(engine, opcode is _TEXT, frame.data)
                else:
                    self._fragment(engine, opcode, frame.data, frame.fin)
            elif (opcode is _PONG and self._pong_timer is not None
                  and frame.data == self._ping_payload):
                self._pong_timer.cancel()
                self._pong_timer = None
            # Pings are answered and close frames echoed by the engine itself.

    def _pause_if_behind(self, engine: FrameEngine) -> None:
        if engine.state is _OPEN and (
                self.writing_paused  # the peer does not read our pongs and messages
                or (self.session.buffered > self._recv_limit
                    and self.session.phase == OPEN)):
            self._pause_reading()  # ... or the app is behind: stop reading from the peer

    def _fragment(self, engine: FrameEngine, opcode: Opcode, data: Any, fin: bool) -> None:
        if opcode is not _CONT:
            self._parts = []
            self._decoder = codecs.getincrementaldecoder("utf-8")() if opcode is _TEXT else None
        decoder = self._decoder
        if decoder is not None:
            try:
                # Checked per fragment: an invalid sequence fails at once, even split.
                self._parts.append(decoder.decode(data, fin))
            except UnicodeDecodeError:
                self._fail(engine, 1007, "invalid UTF-8 in a text message")
                return
        else:
            self._parts.append(bytes(data))
        if fin:
            parts, self._parts = self._parts, []
            self.session.message_received("".join(parts) if decoder is not None
                                          else b"".join(parts))

    def _fail(self, engine: FrameEngine, code: int, reason: str) -> None:
        self._failed = True
        engine.fail(code, reason)

    # -- the WebSocketSink side (called by WebSocketSession) ------------------

    def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> None:
        if self._closed or self.transport is None:
            return
        state = self.state
        extensions = self._write_accept(subprotocol, headers)
        engine = FrameEngine(Side.SERVER, state=State.OPEN, max_size=self._max_size,
                             logger=_engine_logger)
        engine.extensions = extensions
        self._engine = engine
        self._compressing = bool(extensions)
        self._direct = bool(extensions)  # compressed frames: the engine reads them all
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.data_received(early)
        self._resume_reading()
        if state.shutting_down:
            self.close(1001, "server shutting down")  # accepted while the server stops
        elif self.config.WS_PING_INTERVAL > 0:
            self._ping_timer = self.loop.call_later(self.config.WS_PING_INTERVAL, self._ping)

    def _write_accept(self, subprotocol: str | None,
                      headers: list[tuple[bytes, bytes]]) -> list[Extension]:
        """Write the 101 answer; return the extensions it agreed to."""
        assert self.transport is not None
        state = self.state
        parts = [b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                 b"connection: Upgrade\r\nsec-websocket-accept: ",
                 accept_value(self._request_headers), b"\r\n"]
        extensions: list[Extension] = []
        if self.config.WS_PER_MESSAGE_DEFLATE:
            answer, extensions = negotiate_extensions(self._request_headers)
            if answer:
                parts.append(b"sec-websocket-extensions: %s\r\n" % answer.encode())
        if subprotocol:
            parts.append(b"sec-websocket-protocol: %s\r\n" % subprotocol.encode())
        has_server = False
        for name, value in headers:
            if name in _OWN_HEADERS:
                continue
            has_server = has_server or name == b"server"
            parts.append(b"%s: %s\r\n" % (name, value))
        parts.append(state.date_line)
        if not has_server and state.server_header:
            parts.append(state.server_header)
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))
        return extensions

    def send_message(self, data: str | bytes) -> bool:
        engine = self._engine
        if self._closed or engine is None or engine.state is not _OPEN:
            return False
        is_text = type(data) is str
        payload = data.encode() if is_text else data  # type: ignore[union-attr]
        if self._compressing:
            if is_text:
                engine.send_text(payload)
            else:
                engine.send_binary(payload)
            self._flush(engine)
        else:
            # Hot path: an unmasked, unfragmented, uncompressed server frame is a
            # fixed header and the payload; the engine would build the same bytes
            # through a Frame object and a BytesIO per message.
            first = 0x81 if is_text else 0x82
            length = len(payload)
            if length < 126:
                head = _pack_short(first, length)
            elif length < 65536:
                head = _pack_medium(first, 126, length)
            else:
                head = _pack_long(first, 127, length)
            assert self.transport is not None
            if length < 16384:
                self.transport.write(head + payload)
            else:
                self.transport.writelines((head, payload))  # no copy of a large payload
        return True

    def close(self, code: int, reason: str) -> None:
        engine = self._engine
        if self._closed or engine is None or engine.state is not State.OPEN:
            return
        engine.send_close(code, reason)
        self._closing(engine)

    def send_http_response(self, status: int, headers: list[tuple[bytes, bytes]],
                           body: bytes) -> None:
        if self._closed or self.transport is None:
            return
        state = self.state
        parts = [state.status_line(status)]
        has_server = False
        for name, value in headers:
            if name in (b"content-length", b"transfer-encoding", b"connection"):
                continue  # the server frames this answer itself
            has_server = has_server or name == b"server"
            parts.append(b"%s: %s\r\n" % (name, value))
        parts.append(state.date_line)
        if not has_server and state.server_header:
            parts.append(state.server_header)
        parts.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(parts) + body)
        self._close_transport()

    def abort(self) -> None:
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.abort()

    def message_consumed(self) -> None:
        if self.reading_paused and self.session.buffered <= self.state.limits.recv_bytes:
            self._resume_reading()

    async def wait_writable(self) -> None:
        if not self.writing_paused or self._closed:
            return
        await self._write_waiters.wait(self.loop, self.state.limits.send_timeout,
                                       self._send_timed_out)

    def _send_timed_out(self) -> None:
        server_logger.info("WebSocket %s stopped reading for %gs (SEND_TIMEOUT): closing the "
                           "connection", _peer(self.session.scope["client"]),
                           self.state.limits.send_timeout)
        self.abort()

    # -- internals -------------------------------------------------------------

    def _flush(self, engine: FrameEngine) -> None:
        chunks = engine.data_to_send()
        if not chunks or self._closed or self.transport is None:
            return
        end = chunks[-1] == b""  # the engine asks to close the TCP connection
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if data:
            self.transport.write(data)
        if end:
            self._close_transport()

    def _closing(self, engine: FrameEngine) -> None:
        """We sent a close frame: read the peer's answer, but not for ever."""
        self._flush(engine)
        self._resume_reading()
        if not self._closed and self._close_timer is None:
            self._close_timer = self.loop.call_later(self.config.WS_CLOSE_TIMEOUT,
                                                     self._on_close_timeout)

    def _on_close_timeout(self) -> None:
        self._close_timer = None
        server_logger.info("WebSocket peer %s did not finish the close handshake in %ss; "
                           "connection closed", _peer(self.session.scope["client"]),
                           self.config.WS_CLOSE_TIMEOUT)
        self.abort()

    def _close_transport(self) -> None:
        """Close after flushing; a peer that does not read cannot hold it open."""
        if self.transport is None or self._closed:
            return
        self.transport.close()
        if self._close_timer is None:
            self._close_timer = self.loop.call_later(self.config.WS_CLOSE_TIMEOUT, self.abort)

    def _ping(self) -> None:
        self._ping_timer = None
        engine = self._engine
        if self._closed or engine is None or engine.state is not State.OPEN:
            return
        self._ping_timer = self.loop.call_later(self.config.WS_PING_INTERVAL, self._ping)
        if self._pong_timer is not None or self.reading_paused:
            return  # a ping is still unanswered, or we are not reading the answer
        self._ping_count += 1
        self._ping_payload = b"qactuar-%d" % self._ping_count
        engine.send_ping(self._ping_payload)
        self._flush(engine)
        if self.config.WS_PING_TIMEOUT > 0:
            self._pong_timer = self.loop.call_later(self.config.WS_PING_TIMEOUT,
                                                    self._on_pong_timeout)

    def _on_pong_timeout(self) -> None:
        self._pong_timer = None
        engine = self._engine
        if self._closed or engine is None:
            return
        if self.reading_paused:
            return  # we stopped reading, so the pong may be waiting unread: not its fault
        server_logger.info("WebSocket peer %s did not answer a ping in %ss; connection closed",
                           _peer(self.session.scope["client"]), self.config.WS_PING_TIMEOUT)
        self._fail(engine, 1011, "keepalive ping timeout")
        self._flush(engine)

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self._closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        """Read again unless the app is behind or the peer is not reading our frames.

        Once we have sent a close frame we read regardless: the peer's answer
        is what ends the connection.
        """
        if not self.reading_paused or self.transport is None or self._closed:
            return
        engine = self._engine
        if engine is None:
            if len(self._early) > self._max_size:
                return
        elif engine.state is State.OPEN and (
                self.writing_paused or self.session.buffered > self._recv_limit):
            return
        self.reading_paused = False
        self.transport.resume_reading()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"
