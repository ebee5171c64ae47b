"""The page served when no app was given, so a first run shows something."""

from __future__ import annotations

from typing import Any

from qactuar import __version__

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Qactuar</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Qactuar {__version__} is running</h1>
<p>No application was given, so this built-in welcome page is served.</p>
<p>Serve your own ASGI app with <code>qactuar module:app</code>, or mount several
under route prefixes with the <code>APPS</code> setting.</p>
</body></html>
""".encode()


async def welcome_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(PAGE)).encode())],
    })
    await send({"type": "http.response.body", "body": PAGE})
