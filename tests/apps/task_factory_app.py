"""An app whose lifespan startup installs its own asyncio task factory.

Answers "factory" when the request runs in a task that factory made, else
"default": the server must keep using a factory the app installed.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

MADE_BY_FACTORY: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


def _factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    task = asyncio.Task(coro, loop=loop, **kwargs)
    MADE_BY_FACTORY.add(task)
    return task


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().set_task_factory(_factory)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"factory" if asyncio.current_task() in MADE_BY_FACTORY else b"default"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
