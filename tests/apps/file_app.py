"""File bodies through the `http.response.pathsend` and `http.response.zerocopysend`
extensions (tests/test_file_body.py).

GET /path?file=F        200, Content-Length from the app, then pathsend of F
GET /path-no-length?file=F   the same without a Content-Length (the server adds one)
GET /zerocopy?file=F&offset=O&count=C   the app's open file through zerocopysend
GET /zerocopy-parts?file=F   the file in two zerocopysend parts (more_body)
GET /extensions         the scope's extension names, as JSON
After each file body the app records what send() did in /last ("ok" or the
exception's class name), so a test can see what the app was told.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

LAST: dict[str, str] = {"outcome": "none"}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
    route = scope["path"]
    if route == "/extensions" or route == "/last":
        body = json.dumps(sorted(scope["extensions"]) if route == "/extensions"
                          else LAST).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    path = query.get("file", "")
    headers = [(b"content-type", b"application/octet-stream")]
    try:
        if route == "/path":
            headers.append((b"content-length", str(os.path.getsize(path)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.pathsend", "path": path})
        elif route == "/path-no-length":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.pathsend", "path": path})
        elif route == "/zerocopy":
            offset, count = int(query["offset"]), int(query["count"])
            headers.append((b"content-length", str(count).encode()))
            with open(path, "rb") as file:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.zerocopysend", "file": file,
                            "offset": offset, "count": count})
        elif route == "/zerocopy-parts":
            size = os.path.getsize(path)
            headers.append((b"content-length", str(size).encode()))
            with open(path, "rb") as file:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                # No offset: from the file's position; no count: to the end.
                await send({"type": "http.response.zerocopysend", "file": file,
                            "count": size // 2, "more_body": True})
                file.seek(size // 2)
                await send({"type": "http.response.zerocopysend", "file": file})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
    except Exception as error:
        LAST["outcome"] = type(error).__name__
        raise
    LAST["outcome"] = "ok"
