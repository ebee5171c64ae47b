"""A raw WebSocket test client: frames built byte by byte, the server's frames read exactly.

Used by the conformance tests instead of a WebSocket library, so each test
says exactly what goes on the wire (masking, fragmentation, opcodes, RSV
bits, lengths) and checks exactly what comes back.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import zlib
from dataclasses import dataclass

from conftest import ServerProcess, _BytesReader, _SocketReader, read_response

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
          masked: bool = True) -> bytes:
    """One client frame; masked with a random key unless `masked` is False."""
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + mask(payload, key)


def mask(payload: bytes, key: bytes) -> bytes:
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big")


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]


class Deflater:
    """permessage-deflate for the client side (RFC 7692), one context per connection."""

    def __init__(self) -> None:
        self._compress = zlib.compressobj(wbits=-12)
        self._decompress = zlib.decompressobj(wbits=-15)

    def compress(self, data: bytes) -> bytes:
        out = self._compress.compress(data) + self._compress.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def decompress(self, data: bytes) -> bytes:
        return self._decompress.decompress(data + b"\x00\x00\xff\xff")


class RawWebSocket:
    """One client connection after (or while) the opening handshake."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.status = b""
        self.headers: dict[bytes, bytes] = {}
        self.body = b""

    @classmethod
    def connect(cls, server: ServerProcess, path: str = "/echo",
                headers: list[tuple[str, str]] | None = None, deflate: bool = False,
                after_head: bytes = b"", timeout: float = 10) -> RawWebSocket:
        """Send the opening handshake (plus `after_head` in the same write) and read the answer."""
        sock = server.connect(timeout=timeout)
        client = cls(sock)
        extra = list(headers or [])
        if deflate:
            extra.append(("Sec-WebSocket-Extensions",
                          "permessage-deflate; client_max_window_bits"))
        sock.sendall(handshake(path, extra) + after_head)
        client.status, client.headers, client.body = read_response(sock, timeout=timeout)
        return client

    @property
    def accepted(self) -> bool:
        return self.status.startswith(b"HTTP/1.1 101 ")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **options: object) -> None:
        self.sock.sendall(frame(opcode, payload, **options))  # type: ignore[arg-type]

    def recv_frame(self, timeout: float = 10) -> Frame:
        self.sock.settimeout(timeout)
        return _read_frame(_SocketReader(self.sock))

    def recv_data_frame(self, timeout: float = 10) -> Frame:
        """The next frame that is not a ping (pings are answered)."""
        while True:
            received = self.recv_frame(timeout)
            if received.opcode != PING:
                return received
            self.send_frame(PONG, received.payload)

    def expect_close(self, code: int, timeout: float = 10, answer: bool = False) -> Frame:
        """The next frame is a close frame with `code`, and then the server closes TCP.

        With `answer`, the client first completes the close handshake (a server
        that starts a normal close waits for that; one that fails the
        connection for a protocol error does not).
        """
        received = self.recv_data_frame(timeout)
        assert received.opcode == CLOSE, received
        assert received.close_code == code, (received.close_code, received.close_reason)
        if answer:
            self.send_frame(CLOSE, received.payload)
        self.expect_tcp_closed(timeout)
        return received

    def expect_tcp_closed(self, timeout: float = 10) -> None:
        self.sock.settimeout(timeout)
        leftover = _SocketReader(self.sock).buffer
        assert leftover == b"", f"unexpected bytes before the end: {leftover!r}"
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        assert data == b"", f"unexpected bytes before the end: {data!r}"

    def close(self) -> None:
        self.sock.close()


def _read_frame(reader: _SocketReader | _BytesReader) -> Frame:
    """One server frame (never masked) from `reader`."""
    first, second = reader.read_exact(2)
    assert not second & 0x80, "a server must not mask its frames"
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", reader.read_exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", reader.read_exact(8))[0]
    payload = reader.read_exact(length) if length else b""
    return Frame(bool(first & 0x80), first & 0x70, first & 0x0F, payload)


def parse_ws_frames(data: bytes) -> list[Frame]:
    """The server frames in `data`, which holds whole frames only."""
    reader = _BytesReader(data, closed=True)
    frames = []
    while reader.buffer:
        frames.append(_read_frame(reader))
    return frames


def handshake(path: str = "/echo", headers: list[tuple[str, str]] | None = None,
              key: str | None = None, version: str = "13", method: str = "GET",
              omit: tuple[str, ...] = ()) -> bytes:
    """A client's opening handshake: the standard fields but those in `omit`, then `headers`."""
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    fields = {"Host": "test", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": version}
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.items() if name not in omit]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
