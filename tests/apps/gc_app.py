"""An ASGI app that answers with the garbage collector's settings in its process:
"<threshold0> <threshold1> <threshold2> <enabled>", e.g. "7000 10 10 True".

With `TEST_GC_APP_THRESHOLD=N` set it calls `gc.set_threshold(N)` when imported (an
app with its own collector settings); with `TEST_GC_APP_DISABLE=1`, `gc.disable()`.
"""

from __future__ import annotations

import gc
import os
from typing import Any

if os.environ.get("TEST_GC_APP_THRESHOLD"):
    gc.set_threshold(int(os.environ["TEST_GC_APP_THRESHOLD"]))
if os.environ.get("TEST_GC_APP_DISABLE"):
    gc.disable()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = " ".join([*map(str, gc.get_threshold()), str(gc.isenabled())]).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
