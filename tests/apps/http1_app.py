"""An ASGI app for the HTTP/1.1 tests: endpoints that report what the app saw.

Files named in the query string are absolute paths given by the test; the app
appends one JSON line per event so the test can wait on a condition.

Paths:
  /log-body?log=F         echoes the body; one line per receive() message in F
  /wait-read?signal=F     waits until F exists, then reads the body; answers
             [&started=G]  "<bytes> <sha256>" (G is created when the app starts)
  /record?out=F           records every receive() message in F until http.disconnect;
                          never answers
  /after-response?out=F   answers, then records what receive() returns in F
  /app-close              answers with a `connection: close` header
  /custom-server          answers with its own `server` header
  /part-then-wait         streams three parts at once, then waits for the
                          client to leave before its last part
  /stop-on-disconnect     streams a part, then returns unfinished once receive()
                          says http.disconnect
  anything else           the scope as JSON (bytes as latin-1 strings)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any
from urllib.parse import parse_qs

from apps.basic import jsonable


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


def _append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as file:
        file.write(json.dumps(record) + "\n")


def _describe(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": message.get("type"), "len": len(message.get("body", b"")),
            "more_body": message.get("more_body", False)}


async def _respond(send: Any, status: int, body: bytes,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return



def _scope_report(scope: dict[str, Any]) -> dict[str, Any]:
    data = {k: jsonable(v) for k, v in scope.items() if k != "state"}
    data["has_state"] = "state" in scope
    data["state"] = dict(scope.get("state", {}))
    data["types"] = {
        "raw_path": type(scope.get("raw_path")).__name__,
        "query_string": type(scope.get("query_string")).__name__,
        "path": type(scope.get("path")).__name__,
        "headers_are_byte_pairs": all(
            len(pair) == 2 and isinstance(pair[0], bytes) and isinstance(pair[1], bytes)
            for pair in scope.get("headers", [])),
        "client": type(scope.get("client")).__name__,
        "server": type(scope.get("server")).__name__,
    }
    return data


async def _lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["app"] = "http1"
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    path = scope["path"]
    query = _query(scope)
    if path == "/log-body":
        body = b""
        calls = 0
        while True:
            message = await receive()
            calls += 1
            _append(query["log"], _describe(message))
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await _respond(send, 200, body, [(b"x-receive-calls", str(calls).encode())])
    elif path == "/wait-read":
        if "started" in query:
            _append(query["started"], {"started": True})
        for _ in range(3000):  # up to 30 s
            if os.path.exists(query["signal"]):
                break
            await asyncio.sleep(0.01)
        digest = hashlib.sha256()
        size = calls = 0
        while True:
            message = await receive()
            calls += 1
            chunk = message.get("body", b"")
            size += len(chunk)
            digest.update(chunk)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await _respond(send, 200, f"{size} {digest.hexdigest()}".encode(),
                       [(b"x-receive-calls", str(calls).encode())])
    elif path == "/record":
        while True:
            message = await receive()
            _append(query["out"], _describe(message))
            if message["type"] == "http.disconnect":
                return
    elif path == "/after-response":
        await _drain(receive)
        await _respond(send, 200, b"done")
        try:
            message = await asyncio.wait_for(receive(), 3)
        except TimeoutError:
            _append(query["out"], {"type": "timeout"})
        else:
            _append(query["out"], _describe(message))
    elif path == "/app-close":
        await _drain(receive)
        await _respond(send, 200, b"closing", [(b"connection", b"close")])
    elif path == "/part-then-wait":
        await _drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await receive()  # waits: the body is drained, so only http.disconnect comes
    elif path == "/stop-on-disconnect":
        await _drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        if (await receive())["type"] == "http.disconnect":
            return  # told the client is gone: stopping is what an app should do
    elif path == "/custom-server":
        await _drain(receive)
        await _respond(send, 200, b"custom", [(b"server", b"my-app/1.0")])
    else:
        await _drain(receive)
        await _respond(send, 200, json.dumps(_scope_report(scope)).encode(),
                       [(b"content-type", b"application/json")])
