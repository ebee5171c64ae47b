"""App factories for `--factory`: `create_app` returns an app, `broken_factory` raises."""

from __future__ import annotations

from typing import Any


def create_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"12")]})
        await send({"type": "http.response.body", "body": b"from factory"})

    return app


def broken_factory() -> Any:
    raise RuntimeError("no database configured")
