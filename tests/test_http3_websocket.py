"""WebSocket over HTTP/3 (RFC 9220): an extended CONNECT stream carries the same
WebSocket session as over HTTP/1.1 and HTTP/2.

aioquic's client has no WebSocket of its own, but sends any header block and any DATA:
the handshake is an extended CONNECT it sends as given, and the frames are RFC 6455's,
built and read here (masked from the client, as the RFC asks).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct

import pytest

from conftest import ServerProcess, write_tls_files

pytest.importorskip("aioquic")
from aioquic.h3.events import DataReceived, HeadersReceived
from h3_client import H3Client, h3_connect

ENABLE_CONNECT_PROTOCOL = 0x8


def client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while data:
        opcode, size = data[0] & 0x0F, data[1] & 0x7F
        start = 2
        if size == 126:
            size, start = struct.unpack("!H", data[2:4])[0], 4
        frames.append((opcode, data[start:start + size]))
        data = data[start + size:]
    return frames


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("h3ws")
    tls = write_tls_files(folder)
    process = ServerProcess(
        ["apps.ws_app:app", "--host", "127.0.0.1", "--port", "0"],
        env={"QACTUAR_QUIC_BIND": "127.0.0.1:0", "QACTUAR_SSL_CERT_PATH": str(tls["cert"]),
             "QACTUAR_SSL_KEY_PATH": str(tls["key"]),
             "TEST_EVENTS_FILE": str(folder / "events")})
    port = int(process.wait_for_log(r"HTTP/3 \(QUIC\) on udp://[\d.]+:(\d+)").group(1))
    yield port, str(tls["ca"])
    assert process.stop() == 0


def connect_websocket(client: H3Client, path: str,
                      extra: list[tuple[bytes, bytes]] = ()) -> int:
    return client.open_stream("CONNECT", path, end=False, fields=[
        (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
        (b":path", path.encode()), (b":authority", client.authority),
        (b"sec-websocket-version", b"13"), *extra])


async def read_until(client: H3Client, stream: int, frames_wanted: int
                     ) -> tuple[int, list[tuple[int, bytes]]]:
    status = 0
    data = b""
    async with asyncio.timeout(10):
        async for event in client.stream_events(stream):
            if isinstance(event, HeadersReceived):
                status = int(dict(event.headers)[b":status"])
            elif isinstance(event, DataReceived):
                data += event.data
            if len(server_frames(data)) >= frames_wanted or getattr(event, "stream_ended",
                                                                    False):
                break
    return status, server_frames(data)


def test_echo_and_close_handshake_over_an_http3_stream(server: tuple[int, str]) -> None:
    port, ca = server

    async def go() -> None:
        async with h3_connect("127.0.0.1", port, ca=ca) as client:
            await asyncio.sleep(0.05)  # the server's SETTINGS
            assert client.protocol.h3.received_settings[ENABLE_CONNECT_PROTOCOL] == 1
            stream = connect_websocket(client, "/echo")
            client.send_data(stream, client_frame(0x1, b"hello over h3"))
            status, frames = await read_until(client, stream, 1)
            assert status == 200
            assert frames == [(0x1, b"hello over h3")]
            client.send_data(stream, client_frame(0x8, struct.pack("!H", 1000)))
            _, frames = await read_until(client, stream, 1)
            assert frames[0][0] == 0x8 and frames[0][1][:2] == struct.pack("!H", 1000)
            # the connection goes on serving
            answer = await client.request("GET", "/plain")
            assert answer.status == 200
    asyncio.run(go())


def test_scope_says_websocket_over_http3(server: tuple[int, str]) -> None:
    port, ca = server

    async def go() -> None:
        async with h3_connect("127.0.0.1", port, ca=ca) as client:
            stream = connect_websocket(client, "/scope")
            status, frames = await read_until(client, stream, 1)
            assert status == 200
            scope = json.loads(frames[0][1]) if frames[0][1][:1] == b"{" else None
            assert scope is not None and scope["type"] == "websocket"
            assert scope["http_version"] == "3"
            assert scope["path"] == "/scope"
    asyncio.run(go())


def test_refusal_is_an_http3_response(server: tuple[int, str]) -> None:
    port, ca = server

    async def go() -> None:
        async with h3_connect("127.0.0.1", port, ca=ca) as client:
            stream = connect_websocket(client, "/refuse")
            answer = await client.response(stream)
            assert answer.status == 403
            bad = client.open_stream("CONNECT", "/echo", end=False, fields=[
                (b":method", b"CONNECT"), (b":protocol", b"websocket"),
                (b":scheme", b"https"), (b":path", b"/echo"),
                (b":authority", client.authority), (b"sec-websocket-version", b"8")])
            assert (await client.response(bad)).status == 400
    asyncio.run(go())


