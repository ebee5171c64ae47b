"""An ASGI app for tests/test_build.py: it answers with the file each module of
COMPILED_MODULES was loaded from in the process serving the request, and that pid,
as JSON (shows whether a server runs its compiled modules or their `.py` files)."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from qactuar._build import COMPILED_MODULES


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    # Imported here if serving has not needed them yet (HTTP/2, the load tool...), by
    # the same finders the server uses.
    answer: dict[str, Any] = {name: importlib.import_module(name).__file__
                              for name in COMPILED_MODULES}
    answer["pid"] = os.getpid()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
