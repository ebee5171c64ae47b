"""An ASGI app for tests/test_robustness.py; other paths go to `apps.basic:app`.

Paths:
  /two-receivers?out=F  reads the whole body, then awaits two receive() calls at once;
                        writes "ready" to F once both wait, then each message type they
                        return (one per line); never answers
  /system-exit          raises SystemExit (an app bug, e.g. a stray sys.exit())
  /gc                   runs the garbage collector; the body is how many unreachable
                        objects it found (objects only a reference cycle kept alive)
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any
from urllib.parse import parse_qs

from apps.basic import app as basic_app


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await basic_app(scope, receive, send)
        return
    path = scope["path"]
    if path == "/two-receivers":
        out = _query(scope)["out"]
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def record() -> None:
            message = await receive()
            with open(out, "a") as file:
                file.write(message["type"] + "\n")

        tasks = [asyncio.create_task(record()), asyncio.create_task(record())]
        await asyncio.sleep(0)  # both tasks run their first step: both wait in receive()
        with open(out, "a") as file:
            file.write("ready\n")
        await asyncio.gather(*tasks)
    elif path == "/system-exit":
        raise SystemExit(3)
    elif path == "/gc":
        found = gc.collect()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(found).encode()})
    else:
        await basic_app(scope, receive, send)
