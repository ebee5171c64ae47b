"""A plain ASGI WebSocket app whose paths exercise the server's WebSocket side.

Events go to the file named by `TEST_EVENTS_FILE` (see apps.lifespan_apps.record):
"<path> disconnect <code> <reason>", "<path> send-error <exception type>", ...

Paths (websocket scope):
  /echo              accept, echo every text/bytes message until disconnect
  /scope             accept, send the scope as JSON text
  /subprotocol       accept with the last offered subprotocol and header x-extra: yes
  /close?code=C&reason=R   accept, then close with that code and reason
  /refuse            websocket.close before accept (403)
  /return            return without accepting (403)
  /deny              websocket.http.response: 401, x-why: token, body in two parts
  /deny-unfinished   websocket.http.response.start, one body part with more_body, return
  /raise-before      raise before accepting (500)
  /raise-after       accept, receive one message, then raise (1011)
  /bad-close         accept, then close with a code an app may not send (1006)
  /bad-accept?what=W accept with an invalid header (W=header: CR/LF in a value, W=name:
                     a space in a name) or subprotocol (W=subprotocol)
  /send-after-close  accept, close 1000, then send: records the error
  /flood?n=N&size=S  accept, send N binary messages of S bytes, record "sent N" (or the
                     send-error once the connection is gone)
  /hold              accept, never receive; records "received K" on "count" text later
  /wait              accept, record every message until disconnect, then try to send
  /slow-accept       accept only once the file TEST_EVENTS_FILE + ".go" exists, then echo
anything with the http type: "plain http <path>"
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from apps.lifespan_apps import record


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    path = scope["path"]
    if scope["type"] == "http":
        body = f"plain http {path}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
        return
    message = await receive()
    assert message["type"] == "websocket.connect", message
    handler = _HANDLERS.get(path.removeprefix(scope["root_path"]), _echo)
    await handler(scope, receive, send)


async def _accept(send: Any, **extra: Any) -> None:
    await send({"type": "websocket.accept", **extra})


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _accept(send)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record(f"{scope['path']} disconnect {message['code']} {message.get('reason', '')}")
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def _scope(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _accept(send)
    shown = {k: v for k, v in scope.items() if k != "state"}
    shown["state"] = sorted(scope.get("state", {}))
    await send({"type": "websocket.send", "text": json.dumps(_jsonable(shown))})
    await receive()


async def _subprotocol(scope: dict[str, Any], receive: Any, send: Any) -> None:
    offered = scope["subprotocols"]
    await _accept(send, subprotocol=offered[-1] if offered else None,
                  headers=[(b"x-extra", b"yes")])
    await send({"type": "websocket.send", "text": json.dumps(offered)})
    await receive()


async def _close(scope: dict[str, Any], receive: Any, send: Any) -> None:
    query = _query(scope)
    await _accept(send)
    await send({"type": "websocket.close", "code": int(query.get("code", 1000)),
                "reason": query.get("reason", "")})
    message = await receive()
    record(f"{scope['path']} {message['type']} {message.get('code')}")


async def _refuse(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "websocket.close"})


async def _return(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return


async def _deny(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"x-why", b"token"), (b"content-type", b"text/plain")]})
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"entry"})


async def _deny_unfinished(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"half", "more_body": True})


async def _raise_before(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise ValueError("refusing by accident")


async def _raise_after(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _accept(send)
    await receive()
    raise ValueError("broken after accept")


async def _bad_close(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _accept(send)
    await send({"type": "websocket.close", "code": 1006})


_BAD_ACCEPTS: dict[str, dict[str, Any]] = {
    "header": {"headers": [(b"x-bad", b"a\r\ninjected: yes")]},
    "name": {"headers": [(b"x bad", b"value")]},
    "subprotocol": {"subprotocol": "chat\r\ninjected: yes"},
}


async def _bad_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _accept(send, **_BAD_ACCEPTS[_query(scope)["what"]])


async def _send_after_close(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _accept(send)
    await send({"type": "websocket.close", "code": 1000})
    try:
        await send({"type": "websocket.send", "text": "late"})
    except Exception as exc:
        record(f"{scope['path']} send-error {type(exc).__name__}")


async def _flood(scope: dict[str, Any], receive: Any, send: Any) -> None:
    query = _query(scope)
    count, size = int(query["n"]), int(query["size"])
    await _accept(send)
    try:
        for index in range(count):
            await send({"type": "websocket.send", "bytes": bytes([index % 256]) * size})
            if index % 10 == 0:
                record(f"{scope['path']} sent {index + 1}")
    except OSError as exc:
        record(f"{scope['path']} send-error {type(exc).__name__}")
        return
    record(f"{scope['path']} sent all {count}")
    await receive()


async def _hold(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Does not receive until told through the events file's sibling 'go' file."""
    import asyncio
    import os
    await _accept(send)
    go = os.environ["TEST_EVENTS_FILE"] + ".go"
    while not os.path.exists(go):
        await asyncio.sleep(0.02)
    received = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        received += 1
        if message.get("text") == "last":
            break
    record(f"{scope['path']} received {received}")


async def _slow_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    import asyncio
    import os
    go = os.environ["TEST_EVENTS_FILE"] + ".go"
    record(f"{scope['path']} waiting")
    while not os.path.exists(go):
        await asyncio.sleep(0.02)
    await _echo(scope, receive, send)


async def _wait(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await _accept(send)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record(f"{scope['path']} disconnect {message['code']} {message.get('reason', '')}")
            break
        record(f"{scope['path']} got {message.get('text') or message.get('bytes')!r}")
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as exc:
        record(f"{scope['path']} send-error {type(exc).__name__}")


_HANDLERS = {
    "/echo": _echo, "/scope": _scope, "/subprotocol": _subprotocol, "/close": _close,
    "/refuse": _refuse, "/return": _return, "/deny": _deny,
    "/deny-unfinished": _deny_unfinished, "/raise-before": _raise_before,
    "/raise-after": _raise_after, "/bad-close": _bad_close, "/bad-accept": _bad_accept,
    "/send-after-close": _send_after_close, "/flood": _flood, "/hold": _hold, "/wait": _wait,
    "/slow-accept": _slow_accept,
}
