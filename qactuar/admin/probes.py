"""Health and readiness probes on the main port, at the paths the operator chooses.

`HEALTH_PATH` and `READY_PATH` mount these tiny apps (for Kubernetes probes that
cannot reach the admin socket).  A serving process listens only after its
lifespan startup has finished and stops listening when it drains for shutdown,
so a process that answers is ready.  Only imported when a probe path is set.
"""

from __future__ import annotations

import json
from typing import Any


def probe_app(kind: str) -> Any:
    """The ASGI app answering a "health" or "ready" probe."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status, text = 200, ("alive" if kind == "health" else "ready")
        body = json.dumps({"status": text}).encode() + b"\n"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})

    app.__name__ = f"{kind}_probe"
    return app
