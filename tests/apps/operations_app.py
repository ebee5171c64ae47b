"""ASGI apps for tests/test_operations.py: lifespans that hang, and a plain app.

Each app prints a marker line on stdout (flushed) when it reaches the point a
test waits for, so the test can wait on that line instead of sleeping.
"""

from __future__ import annotations

import asyncio
from typing import Any


def mark(text: str) -> None:
    print(f"OPERATIONS {text}", flush=True)


async def _respond(send: Any, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def hanging_startup_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Its lifespan startup never completes (a database that never answers)."""
    if scope["type"] == "lifespan":
        await receive()
        mark("startup begun")
        await asyncio.Event().wait()
        return
    await _respond(send, b"should never be served")


async def hanging_shutdown_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Starts normally; its lifespan shutdown never completes."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        mark("shutdown begun")
        await asyncio.Event().wait()
        return
    await _respond(send, b"hello")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A plain app: answers every request with its root_path and path."""
    if scope["type"] != "http":
        return
    await _respond(send, f"{scope['root_path']}|{scope['path']}".encode())
