"""The WebSocket opening handshake as HTTP/1.1 sees it: is it asked for, is it valid.

Apart from protocols/websocket.py so that HTTP/1.1 can check a handshake
without importing the WebSocket protocol and its frame engine (the
`websockets` library): that is imported at the first hand-over.
"""

from __future__ import annotations

import base64
import re

# Any control byte but horizontal tab, and DEL.
find_control_byte = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search


def wants_websocket(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an upgrade request asks for the `websocket` protocol."""
    for name, value in headers:
        if name == b"upgrade" and b"websocket" in (
                token.strip() for token in value.lower().split(b",")):
            return True
    return False


def handshake_problem(method: str, version: str,
                      headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why this opening handshake is invalid (RFC 6455 4.2.1), or None."""
    if method != "GET":
        return f"Bad Request: a WebSocket handshake must use GET, not {method}"
    if version != "1.1":
        return "Bad Request: a WebSocket handshake needs HTTP/1.1"
    keys = []
    versions = []
    for name, value in headers:
        if find_control_byte(value):
            return "Bad Request: a header value holds control bytes"
        if name == b"sec-websocket-key":
            keys.append(value.strip())
        elif name == b"sec-websocket-version":
            versions.append(value.strip())
    if not keys:
        return "Bad Request: missing Sec-WebSocket-Key header"
    if len(keys) > 1:
        return "Bad Request: more than one Sec-WebSocket-Key header"
    try:
        nonce = base64.b64decode(keys[0], validate=True)
    except ValueError:
        nonce = b""
    if len(nonce) != 16:
        return "Bad Request: Sec-WebSocket-Key must be 16 bytes in base64"
    if not versions:
        return "Bad Request: missing Sec-WebSocket-Version header (13 is supported)"
    if versions != [b"13"]:
        return "Bad Request: unsupported Sec-WebSocket-Version (13 is supported)"
    return None
