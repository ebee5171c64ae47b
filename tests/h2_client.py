"""A small HTTP/2 test client on a real socket, built on the `h2` library (client side).

It exposes the frames' effects exactly: events per stream, flow-control
windows, resets and GOAWAY, so the tests can check what the server did.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from hyperframe.frame import Frame


def parse_frames(received: bytes) -> list[Frame]:
    """The whole frames in `received`, in order."""
    frames = []
    while len(received) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(received[:9]))
        frame.parse_body(memoryview(received[9:9 + length]))
        frames.append(frame)
        received = received[9 + length:]
    return frames


class _FixedBlock:
    """Stands in for an HPACK encoder: every block it encodes is the one it was given."""

    def __init__(self, block: bytes) -> None:
        self.block = block

    def encode(self, headers: object, huffman: bool = True) -> bytes:
        return self.block


@dataclass
class StreamResult:
    """What one stream received."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ended: bool = False
    reset_code: int | None = None

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> bytes | None:
        return dict(self.headers).get(name)


class H2Peer:
    """The client side of one HTTP/2 connection, without its I/O.

    A subclass says how bytes reach the server (`send_raw`) and how the
    server's bytes are read (`pump`, which hands them to `receive`):
    `H2Client` over a socket, `inprocess.InProcessH2Client` over a fake transport.
    """

    def __init__(self, authority: bytes, scheme: bytes, settings: dict[int, int] | None = None,
                 validate: bool = True, auto_window: bool = True,
                 send_preface: bool = True) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_inbound_headers=validate))
        self.auto_window = auto_window  # acknowledge received data at once
        self.streams: dict[int, StreamResult] = {}
        self.events: list[Any] = []
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.pushed: dict[int, list[tuple[bytes, bytes]]] = {}
        self.closed = False
        self.host = authority
        self.scheme = scheme
        if send_preface:
            self.conn.initiate_connection()
            if settings:
                self.conn.update_settings(settings)
            self.flush()

    def send_raw(self, data: bytes) -> None:
        raise NotImplementedError

    def pump(self, timeout: float = 5) -> bool:
        """Read once (up to `timeout`) and handle the events; False once the server closed."""
        raise NotImplementedError

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.send_raw(data)

    def receive(self, data: bytes) -> None:
        """Handle bytes from the server, and send what h2 answers (SETTINGS ack, windows)."""
        for event in self.conn.receive_data(data):
            self._handle(event)
        self.flush()

    def request(self, path: str, method: str = "GET", body: bytes | None = None,
                headers: list[tuple[bytes, bytes]] | None = None, end: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.streams[stream_id] = StreamResult()
        self.conn.send_headers(stream_id, [
            (b":method", method.encode()), (b":path", path.encode()),
            (b":scheme", self.scheme), (b":authority", self.host), *(headers or [])],
            end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=end)
        self.flush()
        return stream_id

    def send_block(self, fields: list[tuple[bytes, bytes]], end: bool = True,
                   stream_id: int | None = None) -> int:
        """Send `fields` exactly as given (no client-side checks): a header block on a new
        stream, or trailers on `stream_id`."""
        config = self.conn.config
        config.validate_outbound_headers = config.normalize_outbound_headers = False
        try:
            if stream_id is None:
                stream_id = self.conn.get_next_available_stream_id()
                self.streams[stream_id] = StreamResult()
            self.conn.send_headers(stream_id, fields, end_stream=end)
        finally:
            config.validate_outbound_headers = config.normalize_outbound_headers = True
        self.flush()
        return stream_id

    def send_raw_block(self, block: bytes, end: bool = True) -> int:
        """Send `block`, HPACK bytes made by the caller, as the header block of a new stream
        (this client's own encoder and its table are left alone)."""
        encoder = self.conn.encoder
        self.conn.encoder = _FixedBlock(block)  # type: ignore[assignment]
        try:
            return self.send_block([], end=end)
        finally:
            self.conn.encoder = encoder

    def _handle(self, event: Any) -> None:
        self.events.append(event)
        stream_id = getattr(event, "stream_id", None)
        result = self.streams.setdefault(stream_id, StreamResult()) if stream_id else None
        if isinstance(event, h2.events.ResponseReceived):
            assert result is not None
            result.headers = list(event.headers)
        elif isinstance(event, h2.events.InformationalResponseReceived):
            assert result is not None
            result.informational.append(list(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            assert result is not None
            result.body += event.data
            if self.auto_window and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                    event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            assert result is not None
            result.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            assert result is not None
            result.ended = True
        elif isinstance(event, h2.events.StreamReset):
            assert result is not None
            result.reset_code = event.error_code
        elif isinstance(event, h2.events.PushedStreamReceived):
            self.pushed[event.pushed_stream_id] = list(event.headers)
            self.streams.setdefault(event.pushed_stream_id, StreamResult())
        elif isinstance(event, h2.events.ConnectionTerminated):
            if self.goaway is None:
                self.goaway = event  # the first one: a later one may follow as the server closes
            # h2 as a client stops at GOAWAY; a server may still finish the streams it
            # announced, so keep reading them.
            self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10,
                 what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            if not self.pump(min(remaining, 0.5)) and not condition():
                raise AssertionError(f"connection closed while waiting for {what}")

    def wait_for_settings_ack(self) -> None:
        """Until the server has acknowledged our SETTINGS (so they apply to what follows)."""
        self.wait_for(lambda: any(isinstance(e, h2.events.SettingsAcknowledged)
                                  for e in self.events), what="SETTINGS ack")

    def response(self, stream_id: int, timeout: float = 10) -> StreamResult:
        result = self.streams[stream_id]
        self.wait_for(lambda: result.ended or result.reset_code is not None, timeout,
                      f"the end of stream {stream_id}")
        return result

    def get(self, path: str, **kwargs: Any) -> StreamResult:
        return self.response(self.request(path, **kwargs))

    def wait_closed(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.pump(max(0.01, min(0.5, deadline - time.monotonic()))):
            if time.monotonic() > deadline:
                raise AssertionError("the server did not close the connection")


class H2Client(H2Peer):
    """One HTTP/2 connection over a real socket (h2c prior knowledge, or TLS with ALPN h2)."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None,
                 **kwargs: Any) -> None:
        raw = socket.create_connection((host, port), timeout=10)
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            raw = tls.wrap_socket(raw, server_hostname=host)
            assert raw.selected_alpn_protocol() == "h2", raw.selected_alpn_protocol()
        self.sock = raw
        super().__init__(f"{host}:{port}".encode(), b"https" if tls is not None else b"http",
                         **kwargs)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def pump(self, timeout: float = 5) -> bool:
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.receive(data)
        return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def queue_scope_requests(h2c: H2Peer, count: int = 6, post_at: int = 3) -> list[int]:
    """Queue (in h2, unsent) the preface and `count` requests for /scope?n=INDEX, the one at
    `post_at` a POST /scope with a body; the stream ids.  For tests that send the bytes
    their own way (cut into pieces), then `check_scope_answers`."""
    h2c.conn.initiate_connection()
    streams = []
    for index in range(count):
        stream_id = h2c.conn.get_next_available_stream_id()
        h2c.streams[stream_id] = StreamResult()
        post = index == post_at
        h2c.conn.send_headers(stream_id, [
            (b":method", b"POST" if post else b"GET"),
            (b":path", b"/scope" if post else b"/scope?n=%d" % index),
            (b":scheme", h2c.scheme), (b":authority", h2c.host)], end_stream=not post)
        if post:
            h2c.conn.send_data(stream_id, b"x" * 40, end_stream=True)
        streams.append(stream_id)
    return streams


def check_scope_answers(h2c: H2Peer, streams: list[int], post_at: int = 3) -> None:
    """Each stream of `queue_scope_requests` was answered with its own request's scope."""
    for index, stream_id in enumerate(streams):
        result = h2c.response(stream_id)
        assert result.status == 200
        scope = json.loads(result.body)
        assert scope["method"] == ("POST" if index == post_at else "GET")
        assert scope["query_string"] == ("" if index == post_at else f"n={index}")
