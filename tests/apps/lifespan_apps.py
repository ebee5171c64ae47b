"""ASGI apps that record their lifespan and requests, for the lifespan and shutdown tests.

Every app appends one line per event to the file named by the environment
variable `TEST_EVENTS_FILE` (when set): "<name> startup", "<name> shutdown",
"<name> request <path>", "<name> done <path>", "<name> lifespan-called".

Paths of the recording apps:
  /state            the request's `state` as JSON
  /state/mutate     changes and adds keys in the request's `state`, then shows it
  /sleep?s=X        answers "slept" after X seconds ("request" logged first)
  anything else     "<name>: <path>"
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import parse_qs

EVENTS_VAR = "TEST_EVENTS_FILE"


def record(line: str) -> None:
    path = os.environ.get(EVENTS_VAR)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()


async def _respond(send: Any, status: int, body: bytes,
                   content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            return


def make_recording_app(name: str) -> Any:
    """An app with a full lifespan: startup puts `greeting` and `name` in state."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            record(f"{name} lifespan-called")
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = f"hello from {name}"
                    scope["state"]["name"] = name
                    record(f"{name} startup")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    record(f"{name} shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        record(f"{name} request {path}")
        await _drain(receive)
        if path.endswith("/state/mutate"):
            scope["state"]["greeting"] = "changed by a request"
            scope["state"]["added_by_request"] = True
            body = json.dumps(scope["state"]).encode()
            await _respond(send, 200, body, b"application/json")
        elif path.endswith("/state"):
            await _respond(send, 200, json.dumps(scope.get("state")).encode(),
                           b"application/json")
        elif path.endswith("/sleep"):
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            await asyncio.sleep(float(query.get("s", "1")))
            await _respond(send, 200, b"slept")
        else:
            await _respond(send, 200, f"{name}: {path}".encode())
        record(f"{name} done {path}")

    app.__name__ = f"recording_app_{name}"
    return app


app = make_recording_app("main")
app_a = make_recording_app("a")
app_b = make_recording_app("b")


async def failing_startup_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Refuses to start: sends `lifespan.startup.failed` with a message."""
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        record("failing startup")
        await send({"type": "lifespan.startup.failed",
                    "message": "database unreachable (error 4242)"})
        return
    await _drain(receive)
    await _respond(send, 200, b"should never be served")


async def no_lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Does not speak lifespan: raises on that scope, like many simple apps do."""
    if scope["type"] != "http":
        record("no-lifespan lifespan-called")
        raise RuntimeError(f"unsupported scope type {scope['type']!r}")
    await _drain(receive)
    await _respond(send, 200, b"served without lifespan")
