"""The HTTP/3 and UDP tests' app: h2_app's paths, a checksummed download, and a UDP echo.

HTTP paths:
  /download?n=K     K bytes of a fixed pattern in 64 KiB parts; header x-sha256 is their
                    SHA-256 (the client checks what arrived)
  /pid              the serving process's pid
  /echo             the request body back
anything else: h2_app (/scope, /trailers, /big, /wait-disconnect, /hold, ...)

UDP (the `udp` scope): each datagram is answered with `<pid> <data>`; a datagram
`stall` stops reading for 2 seconds (a full queue, for the drop counters); `state`
is answered with the keys of the scope's lifespan state; `bad-send` tries a udp.send
whose data is a str and answers with the error it got.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any
from urllib.parse import parse_qs

from apps.h2_app import app as h2_app

PATTERN = bytes(range(256)) * 256  # 64 KiB


def download_bytes(size: int) -> bytes:
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "udp":
        await udp_echo(scope, receive, send)
        return
    if scope["type"] != "http":
        await h2_app(scope, receive, send)
        return
    path = scope["path"]
    if path == "/download":
        size = int(parse_qs(scope["query_string"].decode())["n"][0])
        digest = hashlib.sha256(download_bytes(size)).hexdigest().encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode()),
                                (b"x-sha256", digest)]})
        sent = 0
        while sent < size:
            part = min(len(PATTERN), size - sent)
            sent += part
            await send({"type": "http.response.body", "body": PATTERN[:part],
                        "more_body": sent < size})
    elif path == "/pid":
        body = str(os.getpid()).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif path == "/echo":
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-body-size", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    else:
        await h2_app(scope, receive, send)


async def udp_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    pid = str(os.getpid()).encode()
    while True:
        message = await receive()
        if message["type"] == "udp.disconnect":
            return
        if message["data"] == b"stall":
            await asyncio.sleep(2)
            continue
        if message["data"] == b"bad-send":  # data that is not bytes: refused, and said so
            try:
                await send({"type": "udp.send", "data": "text", "client": message["client"]})
            except RuntimeError as exc:
                await send({"type": "udp.send", "data": f"refused: {exc}".encode(),
                            "client": message["client"]})
            continue
        if message["data"] == b"state":  # what lifespan startup put in the shared state
            await send({"type": "udp.send", "data": ",".join(sorted(scope["state"])).encode(),
                        "client": message["client"]})
            continue
        await send({"type": "udp.send", "data": pid + b" " + message["data"],
                    "client": message["client"]})


async def http_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that refuses every scope but http and lifespan, as many frameworks do."""
    assert scope["type"] in ("http", "lifespan"), f"unsupported scope {scope['type']!r}"
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
