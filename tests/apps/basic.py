"""A plain ASGI app whose paths exercise the server: echo, scope, streaming, errors.

Paths:
  /echo            body echoed; x-receive-calls = number of http.request messages
  /scope           the request scope as JSON (bytes as latin-1 strings)
  /stream?n=K      K chunks of "chunk-<i>\\n", streamed (no content-length)
  /sized?n=K       K bytes with a content-length
  /status/<code>   an empty response with that status
  /error/before    raises before http.response.start
  /error/after     starts a response, sends a chunk, then raises
  /sleep?s=X       answers "slept" after X seconds
  /ignore-body     answers at once without reading the body
  /hello           "Hello, world!"
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def _respond(send: Any, status: int, body: bytes,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any) -> tuple[bytes, int]:
    body = b""
    calls = 0
    while True:
        message = await receive()
        calls += 1
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return body, calls


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = _query(scope)
    if path == "/echo":
        body, calls = await _read_body(receive)
        await _respond(send, 200, body, [(b"x-receive-calls", str(calls).encode())])
    elif path == "/scope":
        await _read_body(receive)
        data = {k: v for k, v in scope.items() if k != "state"}
        data["state"] = dict(scope.get("state", {}))
        await _respond(send, 200, json.dumps(jsonable(data)).encode(),
                       [(b"content-type", b"application/json")])
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(int(query.get("n", "3"))):
            await send({"type": "http.response.body", "body": f"chunk-{i}\n".encode(),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sized":
        n = int(query.get("n", "10"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(n).encode())]})
        await send({"type": "http.response.body", "body": b"x" * n})
    elif path.startswith("/status/"):
        await send({"type": "http.response.start", "status": int(path.rsplit("/", 1)[1]),
                    "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/error/before":
        raise RuntimeError("boom before start")
    elif path == "/error/after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")
    elif path == "/sleep":
        await asyncio.sleep(float(query.get("s", "1")))
        await _respond(send, 200, b"slept")
    elif path == "/ignore-body":
        await _respond(send, 200, b"ignored")
    else:
        await _respond(send, 200, b"Hello, world!")
