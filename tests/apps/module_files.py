"""An ASGI app for tests/test_build.py: it answers with the file each module of
COMPILED_MODULES was loaded from in the process serving the request, and that pid,
as JSON (shows whether a server runs its compiled modules or their `.py` files)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from qactuar._build import COMPILED_MODULES


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    answer: dict[str, Any] = {name: sys.modules[name].__file__ for name in COMPILED_MODULES}
    answer["pid"] = os.getpid()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
