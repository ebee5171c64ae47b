"""A JSON-RPC 2.0 endpoint for the client's jsonrpc() tests (tests/test_client_backends_rpc.py)
and docs/client-backends.md: POST / with a JSON-RPC request.

Methods: add(a, b); subtract(minuend, subtrahend) (positional or named); echo(*params);
anything else answers error -32601; a body that is not JSON, -32700.
"""

from __future__ import annotations

import json
from typing import Any


def _subtract(minuend: float, subtrahend: float) -> float:
    return minuend - subtrahend


METHODS = {"add": lambda a, b: a + b, "subtract": _subtract, "echo": lambda *p: list(p)}


def _answer(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        return {"jsonrpc": "2.0", "id": None,
                "error": {"code": -32600, "message": "Invalid Request"}}
    method = METHODS.get(request.get("method"))
    if method is None:
        return {"jsonrpc": "2.0", "id": request.get("id"),
                "error": {"code": -32601, "message": "Method not found",
                          "data": request.get("method")}}
    params = request.get("params", [])
    try:
        result = method(**params) if isinstance(params, dict) else method(*params)
    except TypeError as error:
        return {"jsonrpc": "2.0", "id": request.get("id"),
                "error": {"code": -32602, "message": "Invalid params", "data": str(error)}}
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    try:
        answer = _answer(json.loads(body))
    except ValueError:
        answer = {"jsonrpc": "2.0", "id": None,
                  "error": {"code": -32700, "message": "Parse error"}}
    data = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(data))]})
    await send({"type": "http.response.body", "body": data})
