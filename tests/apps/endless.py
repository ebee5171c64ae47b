"""An app that streams a body without end (until its client goes), beside basic.app.

Paths:
  /endless     200, then 1 KiB body parts for as long as send() takes them; stops
               when send() says the client has gone
anything else: basic.app
"""

from __future__ import annotations

from typing import Any

from apps.basic import app as basic_app


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http" or scope["path"] != "/endless":
        await basic_app(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    part = b"x" * 1024
    try:
        while True:
            await send({"type": "http.response.body", "body": part, "more_body": True})
    except OSError:  # ClientDisconnected: the client has gone
        return
