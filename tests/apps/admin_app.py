"""An app for the admin plane's tests: hello world, and a lifespan that can be broken.

While the file named by $ADMIN_TEST_BREAK_FILE exists, lifespan startup fails: a
reload then starts workers that cannot serve, and must be rolled back.
"""

from __future__ import annotations

import os
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                marker = os.environ.get("ADMIN_TEST_BREAK_FILE", "")
                if marker and os.path.exists(marker):
                    await send({"type": "lifespan.startup.failed",
                                "message": "broken on purpose (the break file exists)"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"Hello, world!"
    if scope["method"] == "POST":
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
