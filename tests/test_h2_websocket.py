"""WebSocket over HTTP/2 (RFC 8441): extended CONNECT on a stream, the same ASGI session."""

from __future__ import annotations

import json

import h2.errors
import pytest
from websockets.frames import Frame, Opcode

from conftest import ServerProcess
from h2_client import H2Client, StreamResult

APP = "apps.ws_app:app"


@pytest.fixture
def ws_server(start_server) -> ServerProcess:
    return start_server(APP)


def open_websocket(h2c: H2Client, path: str,
                   extra: list[tuple[bytes, bytes]] | None = None) -> int:
    h2c.wait_for(lambda: h2c.conn.remote_settings.enable_connect_protocol == 1,
                 what="SETTINGS_ENABLE_CONNECT_PROTOCOL")
    stream_id = h2c.conn.get_next_available_stream_id()
    h2c.streams.setdefault(stream_id, StreamResult())
    h2c.conn.send_headers(stream_id, [
        (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
        (b":path", path.encode()), (b":authority", h2c.host),
        (b"sec-websocket-version", b"13"), *(extra or [])])
    h2c.flush()
    return stream_id


def send_frame(h2c: H2Client, stream_id: int, opcode: Opcode, data: bytes) -> None:
    h2c.conn.send_data(stream_id, Frame(opcode, data).serialize(mask=True, extensions=[]))
    h2c.flush()


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmasked server frames (short payloads only) as (opcode, payload)."""
    frames = []
    while data:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        assert length < 126
        frames.append((opcode, data[2:2 + length]))
        data = data[2 + length:]
    return frames


def test_settings_advertise_extended_connect(ws_server) -> None:
    with H2Client(ws_server.host, ws_server.port) as h2c:
        h2c.wait_for(lambda: h2c.conn.remote_settings.enable_connect_protocol == 1,
                     what="SETTINGS_ENABLE_CONNECT_PROTOCOL = 1")


def test_websocket_echo_over_an_h2_stream(ws_server) -> None:
    with H2Client(ws_server.host, ws_server.port) as h2c:
        stream_id = open_websocket(h2c, "/echo")
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: bool(result.headers), what="the answer to CONNECT")
        assert result.status == 200
        send_frame(h2c, stream_id, Opcode.TEXT, b"hello over h2")
        h2c.wait_for(lambda: len(result.body) >= 15, what="the echo")
        assert server_frames(result.body) == [(Opcode.TEXT.value, b"hello over h2")]
        # Other streams on the same connection are served meanwhile.
        assert h2c.get("/other").body == b"plain http /other"
        send_frame(h2c, stream_id, Opcode.CLOSE, b"\x03\xe8bye")
        h2c.wait_for(lambda: result.ended or result.reset_code is not None,
                     what="the end of the WebSocket stream")
        assert (Opcode.CLOSE.value, b"\x03\xe8bye") in server_frames(result.body[15:])


def test_websocket_scope_over_h2(ws_server) -> None:
    with H2Client(ws_server.host, ws_server.port) as h2c:
        stream_id = open_websocket(h2c, "/scope?x=1", [(b"sec-websocket-protocol", b"chat")])
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: len(result.body) > 2, what="the scope message")
        payload = result.body[2:] if result.body[1] < 126 else result.body[4:]
        scope = json.loads(payload)
    assert scope["type"] == "websocket" and scope["http_version"] == "2"
    assert scope["scheme"] == "ws" and scope["path"] == "/scope"
    assert scope["query_string"] == "x=1" and scope["subprotocols"] == ["chat"]


def test_refused_websocket_is_an_http2_response(ws_server) -> None:
    with H2Client(ws_server.host, ws_server.port) as h2c:
        stream_id = open_websocket(h2c, "/refuse")
        result = h2c.response(stream_id)
    assert result.status == 403


@pytest.mark.parametrize(("fields", "reason"), [
    ([(b"x-thing", b"a\x01b")], b"control bytes"),
    ([(b"sec-websocket-version", b"8")], b"Sec-WebSocket-Version must be 13"),
], ids=["control-byte", "version-8"])
def test_invalid_extended_connect_gets_400(ws_server, fields: list[tuple[bytes, bytes]],
                                           reason: bytes) -> None:
    # HTTP/2 lets a value hold control bytes other than NUL, CR and LF; a
    # WebSocket handshake does not, over HTTP/2 as over HTTP/1.1.
    with H2Client(ws_server.host, ws_server.port) as h2c:
        h2c.wait_for(lambda: h2c.conn.remote_settings.enable_connect_protocol == 1,
                     what="SETTINGS_ENABLE_CONNECT_PROTOCOL")
        stream_id = h2c.conn.get_next_available_stream_id()
        h2c.streams.setdefault(stream_id, StreamResult())
        version = [] if any(name == b"sec-websocket-version" for name, _ in fields) \
            else [(b"sec-websocket-version", b"13")]
        h2c.conn.send_headers(stream_id, [
            (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
            (b":path", b"/echo"), (b":authority", h2c.host), *version, *fields])
        h2c.flush()
        result = h2c.response(stream_id)
        assert result.status == 400, result.status
        assert reason in bytes(result.body), bytes(result.body)
        # The connection serves other streams afterwards.
        assert h2c.get("/after").body == b"plain http /after"


def test_client_reset_ends_the_session(ws_server) -> None:
    with H2Client(ws_server.host, ws_server.port) as h2c:
        stream_id = open_websocket(h2c, "/echo")
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: bool(result.headers), what="the answer to CONNECT")
        h2c.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        h2c.flush()
        assert h2c.get("/after").body == b"plain http /after"
    assert "Traceback" not in ws_server.output


def test_ws_off_does_not_advertise_extended_connect(start_server) -> None:
    server = start_server(APP, "--ws", "off")
    with H2Client(server.host, server.port) as h2c:
        h2c.wait_for(lambda: any(type(e).__name__ == "RemoteSettingsChanged"
                                 for e in h2c.events), what="SETTINGS")
        assert h2c.conn.remote_settings.enable_connect_protocol == 0
