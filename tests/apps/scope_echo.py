"""An ASGI app that answers every HTTP request with its scope as JSON (bytes as latin-1),
whatever the path: for tests of what a proxy in front changes (root_path, path, client)."""

from __future__ import annotations

import json
from typing import Any

from apps.basic import jsonable


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    shown = {key: value for key, value in scope.items() if key not in ("state", "app")}
    body = json.dumps(jsonable(shown)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
