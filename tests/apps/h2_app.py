"""An ASGI app for the HTTP/2 tests: held bodies, disconnects, connection headers, extensions.

Paths:
  /hold             reads no body until /release is requested (same server); answers
                    with the byte count read
  /release          lets every /hold read its body
  /wait-disconnect  starts nothing; waits in receive() and writes what it got to ?file=
  /conn-headers     answers with Connection, Keep-Alive, Transfer-Encoding headers
  /scope            the scope's headers, http_version, scheme and extensions (JSON)
  /trailers         a body then trailers (x-checksum: done)
  /early-hints      a 103 with a link header, then 200
  /push             pushes /pushed, then answers
  /big?n=K          K bytes streamed in 16 KiB parts (waits as back-pressure asks)
  /fields?n=K&size=L&seed=S   K headers x-field-<i> of L bytes each (`field_value`), and a
                    set-cookie
anything else: basic.app
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from apps.basic import app as basic_app
from apps.basic import jsonable

# What /release sets, when the server ran no lifespan startup.  With one, each server
# has its own (in its lifespan state): in-process tests run many servers in one process.
_released = asyncio.Event()


def _release_event(scope: dict[str, Any]) -> asyncio.Event:
    event = scope.get("state", {}).get("released")
    return event if isinstance(event, asyncio.Event) else _released


def field_value(seed: str, index: int, size: int) -> bytes:
    """The value of header x-field-<index> in the answer to /fields."""
    return (f"{seed}-{index}-" * size).encode()[:size]


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def _text(send: Any, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            scope["state"]["released"] = asyncio.Event()
        await basic_app(scope, receive, send)
        return
    path = scope["path"]
    query = _query(scope)
    if path == "/hold":
        await _release_event(scope).wait()
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await _text(send, str(size).encode())
    elif path == "/release":
        _release_event(scope).set()
        await _text(send, b"released")
    elif path == "/wait-disconnect":
        message = await receive()
        if message["type"] == "http.request":
            message = await receive()
        Path(query["file"]).write_text(message["type"])
    elif path == "/conn-headers":
        await _text(send, b"ok", [(b"Connection", b"keep-alive"), (b"Keep-Alive", b"timeout=5"),
                                  (b"Transfer-Encoding", b"chunked"), (b"X-Kept", b"yes")])
    elif path == "/scope":
        data = {k: scope[k] for k in ("headers", "http_version", "scheme", "extensions",
                                      "method", "path", "query_string")}
        await _text(send, json.dumps(jsonable(data)).encode())
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"trailer", b"x-checksum")]})
        await send({"type": "http.response.body", "body": b"body", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"done")],
                    "more_trailers": False})
    elif path == "/early-hints":
        await send({"type": "http.response.early_hint",
                    "links": [b"</style.css>; rel=preload; as=style"]})
        await _text(send, b"after hints")
    elif path == "/push":
        await send({"type": "http.response.push", "path": "/pushed", "headers": []})
        await _text(send, b"pushed one")
    elif path == "/pushed":
        await _text(send, b"I was pushed")
    elif path == "/fields":
        size = int(query["size"])
        fields = [(f"x-field-{i}".encode(), field_value(query["seed"], i, size))
                  for i in range(int(query["n"]))]
        await _text(send, b"fields", [*fields, (b"set-cookie", b"session=secret")])
    elif path == "/big":
        n = int(query.get("n", "1000000"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(n).encode())]})
        sent = 0
        while sent < n:
            part = min(16384, n - sent)
            sent += part
            await send({"type": "http.response.body", "body": b"b" * part,
                        "more_body": sent < n})
    else:
        await basic_app(scope, receive, send)
