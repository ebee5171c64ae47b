"""The ASGI apps every server serves in the benchmarks.

Each scenario names one attribute of this module (or `starlette_app:app`),
and every server (Qactuar and its peers) imports that same object, so they
all run identical app code.
This module owns only app behaviour; it must not know about servers or load tools.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

HELLO_BODY = b"Hello, world!"
TEN_KIB_BODY = b"x" * 10240
STREAM_CHUNK = b"s" * 1024
STREAM_CHUNKS = 100
JSON_PAYLOAD = {"message": "Hello, world!"}

_TEXT = [(b"content-type", b"text/plain")]


async def _drain_request(receive: Any) -> None:
    """Read the request body to its end (servers may wait for it before keep-alive)."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def _lifespan(receive: Any, send: Any) -> None:
    """Answer lifespan messages so that every server's lifespan support is a no-op."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Plain-text hello world."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    await send({"type": "http.response.start", "status": 200,
                "headers": [*_TEXT, (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": HELLO_BODY})


async def ten_kib(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A 10 KiB response body, sent in one message."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    await send({"type": "http.response.start", "status": 200,
                "headers": [*_TEXT, (b"content-length", b"10240")]})
    await send({"type": "http.response.body", "body": TEN_KIB_BODY})


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo the request body back (POST echo)."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    parts = []
    more = True
    while more:
        message = await receive()
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(parts)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A streamed response: 100 chunks of 1 KiB, no Content-Length (chunked on HTTP/1.1)."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    await _drain_request(receive)
    await send({"type": "http.response.start", "status": 200, "headers": _TEXT})
    for _ in range(STREAM_CHUNKS - 1):
        await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": STREAM_CHUNK})


async def ws_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """WebSocket echo of every text or bytes message; plain hello world over HTTP.

    The HTTP answer is what readiness polling sees before any WebSocket load.
    """
    if scope["type"] == "http":
        return await hello(scope, receive, send)
    if scope["type"] != "websocket":
        return await _lifespan(receive, send)
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def udp_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Qactuar's `udp` scope (docs/http3-udp.md): every datagram back to its sender."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "http":
        await hello(scope, receive, send)
        return
    while True:
        message = await receive()
        if message["type"] != "udp.receive":
            return
        await send({"type": "udp.send", "data": message["data"], "client": message["client"]})
# The static-file scenario's file: 1 MiB of a fixed pattern, written once into
# benchmarks/build/ (git-ignored) by whichever process imports this first.
STATIC_FILE_SIZE = 1024 * 1024
STATIC_FILE = Path(__file__).resolve().parent / "build" / "static-1mib.bin"


def static_file_bytes() -> bytes:
    """The static file's content: a repeating, position-revealing pattern."""
    return (bytes(range(251)) * (STATIC_FILE_SIZE // 251 + 1))[:STATIC_FILE_SIZE]


def _ensure_static_file() -> str:
    if not STATIC_FILE.exists() or STATIC_FILE.stat().st_size != STATIC_FILE_SIZE:
        STATIC_FILE.parent.mkdir(parents=True, exist_ok=True)
        partial = STATIC_FILE.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(static_file_bytes())
        partial.replace(STATIC_FILE)  # atomic: a concurrent reader never sees half a file
    return str(STATIC_FILE)


async def static_file(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A 1 MiB file, sent with `http.response.pathsend` where the server offers it
    (as Starlette's FileResponse does), read and sent as one body otherwise."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    path = _ensure_static_file()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", b"%d" % STATIC_FILE_SIZE)]})
    if "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": path})
    else:
        with open(path, "rb") as file:
            await send({"type": "http.response.body", "body": file.read()})
