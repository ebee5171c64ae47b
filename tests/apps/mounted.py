"""Apps to mount side by side with APPS: each tells who it is and what scope it got.

Every app answers any path with JSON: its name, the scope's `path`,
`root_path` and `raw_path`, and its `state`.  Startup puts the app's own name
in `state`; lifespan events go to the file named by `TEST_EVENTS_FILE`.
"""

from __future__ import annotations

import json
from typing import Any

from apps.lifespan_apps import record


def make_app(name: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["owner"] = name
                    record(f"{name} startup")
                    await send({"type": "lifespan.startup.complete"})
                else:
                    record(f"{name} shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = json.dumps({
            "app": name,
            "path": scope["path"],
            "root_path": scope["root_path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "state": dict(scope.get("state", {})),
        }).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    app.__name__ = f"mounted_{name}"
    return app


root = make_app("root")
api = make_app("api")
api_v2 = make_app("api_v2")
admin = make_app("admin")
