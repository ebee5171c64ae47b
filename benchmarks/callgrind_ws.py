"""Instructions per WebSocket echo, counted by callgrind (not a wall-clock figure).

The WebSocket counterpart of `callgrind_hello.py`: runs the server
(`benchmarks.apps:ws_echo`, keep-alive pings off) under callgrind, opens one
WebSocket connection, sends N masked text messages of SIZE bytes one after
another (each waits for its echo), stops the server and prints

    (Ir(N2) - Ir(N1)) / (N2 - N1)

the cost of one echoed message (frame in, the app's receive and send, frame
out, the event loop around them).

    python benchmarks/callgrind_ws.py                 # 64-byte messages, N = 1000 and 4000
    python benchmarks/callgrind_ws.py --size 4096 --counts 500 2000
"""

from __future__ import annotations

import argparse
import base64
import os
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.callgrind_hello import (
    connect_when_listening,
    free_port,
    server_under_callgrind,
    total_instructions,
)

MASK = b"\x11\x22\x33\x44"


def masked_text_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x81, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    masked = bytes(byte ^ MASK[index % 4] for index, byte in enumerate(payload))
    return head + MASK + masked


def read_exactly(sock: object, buffer: bytearray, size: int) -> bytes:
    while len(buffer) < size:
        chunk = sock.recv(65536)  # type: ignore[attr-defined]
        if not chunk:
            raise SystemExit("the server closed the connection")
        buffer += chunk
    data = bytes(buffer[:size])
    del buffer[:size]
    return data


def measure(messages: int, size: int, workdir: Path) -> int:
    """Ir of one server run that echoes `messages` messages of `size` bytes."""
    port = free_port()
    out_file = workdir / f"callgrind.{messages}.out"
    args = ["benchmarks.apps:ws_echo", "--host", "127.0.0.1", "--port", str(port),
            "--ws-ping-interval", "0"]
    payload = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    frame = masked_text_frame(payload)
    echo_head = len(frame) - len(MASK) - size  # the server's frames carry no mask
    with server_under_callgrind(args, out_file) as server, \
            connect_when_listening(port, server) as sock:
        key = base64.b64encode(os.urandom(16))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
        buffer = bytearray()
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"the handshake was refused: {head!r}")
        buffer = bytearray(rest)
        for _ in range(messages):
            sock.sendall(frame)
            echo = read_exactly(sock, buffer, echo_head + size)
            if echo[echo_head:] != payload:
                raise SystemExit("the echo differs from the message")
    return total_instructions(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[1000, 4000],
                        metavar=("N1", "N2"), help="the two message counts (default 1000 4000)")
    parser.add_argument("--size", type=int, default=64, help="bytes per message (default 64)")
    args = parser.parse_args()
    low, high = sorted(args.counts)
    with tempfile.TemporaryDirectory(prefix="qactuar-callgrind-ws-") as folder:
        low_ir = measure(low, args.size, Path(folder))
        high_ir = measure(high, args.size, Path(folder))
    print(f"Ir({low}) = {low_ir:,}  Ir({high}) = {high_ir:,}")
    print(f"instructions per {args.size}-byte echo: {(high_ir - low_ir) / (high - low):,.0f}")


if __name__ == "__main__":
    main()
