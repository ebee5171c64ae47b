"""An ASGI app for the process-model tests: it says which process answers and
can sleep, block its process, or kill it.

With `TEST_EVENTS_FILE` set it appends "startup <pid>", "shutdown <pid>",
"start <path> <pid>" and "end <path> <pid>" lines there.

Paths:
  /pid             the pid of the process answering, as text
  /state           "<pid of the process that ran lifespan startup>" (from `state`)
  /slow?s=X        awaits X seconds (the event loop keeps running), then "slow done"
  /block?s=X       time.sleep(X): blocks the whole process, then "blocked"
  /start-then-block  starts a chunked response, then time.sleep(60)
  /exit            os._exit(1) before answering (an app killing its process)
  /segfault        crashes the interpreter (a fault in a C extension)
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from typing import Any
from urllib.parse import parse_qs

from apps.lifespan_apps import record


async def _answer(send: Any, text: str, status: int = 200) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["startup_pid"] = os.getpid()
                record(f"startup {os.getpid()}")
                await send({"type": "lifespan.startup.complete"})
            else:
                record(f"shutdown {os.getpid()}")
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    record(f"start {path} {os.getpid()}")
    if path == "/slow":
        await asyncio.sleep(float(query.get("s", "1")))
        text = "slow done"
    elif path == "/block":
        time.sleep(float(query.get("s", "1")))
        text = "blocked"
    elif path == "/start-then-block":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        time.sleep(60)
        return
    elif path == "/exit":
        os._exit(1)
    elif path == "/segfault":
        ctypes.string_at(0)
    elif path == "/state":
        text = str(scope["state"]["startup_pid"])
    else:
        text = str(os.getpid())
    await _answer(send, text)
    record(f"end {path} {os.getpid()}")
