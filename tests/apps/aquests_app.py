"""The server side of the aquests interface tests (tests/test_client_aquests*.py) and of
docs/client-aquests.md's examples: the aquests README's paths plus what the tests check.

HTTP paths:
  /                     a 4210-byte HTML page (the size in aquests' README output) that
                        sets the cookie visited=yes
  /echo, /users/<name>, /models/<name>
                        JSON: method, path, query, headers, body (latin-1), content_type
  /json                 {"hello": "world"} as application/json
  /xml                  <hello>world</hello> as text/xml
  /sized?n=N            N bytes with Content-Length; /streamed?n=N the same, chunked
  /sleep?s=X            "slept" after X seconds
  /status/<code>        an empty answer with that status
  /redirect?n=N         N redirects (301, then 302, ...) ending at /json; /loop redirects
                        to itself; /moved: 301 to /found, 302 to / (the README's history)
  /inflight?n=N&wait=S  waits (S seconds at most, default 0.5) until N requests are inside
                        it; answers the most it saw at once
  /set-cookie?k=v...    sets each cookie; /cookies shows the Cookie field as JSON
  /basic                401 unless Basic user:secret; /bearer 401 unless Bearer token-1
  /digest               401 with a Digest challenge unless a valid Digest user:secret (MD5)
  /rpc                  XML-RPC: package_releases(name) -> ["1.5.1"], get_prime_number_gt(n),
                        add(a, b); other methods answer Fault 1; /rpc-auth the same behind
                        Basic user:secret
WebSocket paths:
  /websocket/echo       echoes every message
  /websocket/close      closes with 4000 "go away" before sending anything
  /websocket/silent     accepts and sends nothing
  /websocket/deny       refuses the handshake with 403
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import xmlrpc.client
from typing import Any
from urllib.parse import parse_qs, parse_qsl

_HEAD, _TAIL = b"<!doctype html><html><body>", b"</body></html>\n"
PAGE = _HEAD + b"x" * (4210 - len(_HEAD) - len(_TAIL)) + _TAIL
assert len(PAGE) == 4210
REALM = "aquests-tests"
NONCE = "dcd98b7102dd2f0e8b11d0f600bfb0c093"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": f"{message['type']}.complete"})
        return
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
        return
    await _http(scope, receive, send)


async def _respond(send: Any, status: int, body: bytes = b"",
                   content_type: bytes | None = b"text/plain",
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    fields = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    if content_type is not None:
        fields.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def _field(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    body = await _body(receive)
    if path == "/":
        await _respond(send, 200, PAGE, b"text/html; charset=utf-8",
                       [(b"set-cookie", b"visited=yes; Path=/")])
    elif path == "/echo" or path.startswith(("/users/", "/models/")):
        shown = {"method": scope["method"], "path": path,
                 "query": scope["query_string"].decode(),
                 "headers": [[k.decode("latin-1"), v.decode("latin-1")]
                             for k, v in scope["headers"]],
                 "body": body.decode("latin-1"),
                 "content_type": _field(scope, b"content-type"),
                 "client_port": scope["client"][1], "http_version": scope["http_version"]}
        await _respond(send, 200, json.dumps(shown).encode(), b"application/json")
    elif path == "/json":
        await _respond(send, 200, b'{"hello": "world"}', b"application/json")
    elif path == "/xml":
        await _respond(send, 200, b"<hello>world</hello>", b"text/xml")
    elif path == "/sized":
        await _respond(send, 200, b"s" * int(query.get("n", "10")))
    elif path == "/streamed":
        size = int(query.get("n", "10"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for start in range(0, size, 1000):
            await send({"type": "http.response.body", "body": b"c" * min(1000, size - start),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sleep":
        await asyncio.sleep(float(query.get("s", "1")))
        await _respond(send, 200, b"slept")
    elif path.startswith("/status/"):
        await _respond(send, int(path.rsplit("/", 1)[1]), b"", None)
    elif path == "/redirect":
        left = int(query.get("n", "1"))
        target = f"/redirect?n={left - 1}" if left > 1 else "/json"
        status = 301 if left % 2 else 302
        await _respond(send, status, b"", None, [(b"location", target.encode())])
    elif path == "/moved":
        await _respond(send, 301, b"", None, [(b"location", b"/found")])
    elif path == "/found":
        await _respond(send, 302, b"", None, [(b"location", b"/")])
    elif path == "/inflight":
        await _inflight(send, int(query.get("n", "1")), float(query.get("wait", "0.5")))
    elif path == "/loop":
        await _respond(send, 302, b"", None, [(b"location", b"/loop")])
    elif path == "/set-cookie":
        cookies = [(b"set-cookie", f"{k}={v}; Path=/".encode())
                   for k, v in parse_qsl(scope["query_string"].decode())]
        await _respond(send, 200, b"set", headers=cookies)
    elif path == "/cookies":
        await _respond(send, 200, json.dumps(_field(scope, b"cookie")).encode(),
                       b"application/json")
    elif path in ("/rpc", "/rpc-auth"):
        expected = "Basic " + base64.b64encode(b"user:secret").decode()
        if path == "/rpc-auth" and _field(scope, b"authorization") != expected:
            await _guarded(send, False, 'Basic realm="rpc"')
        else:
            await _respond(send, 200, _xmlrpc(body), b"text/xml")
    elif path == "/basic":
        expected = "Basic " + base64.b64encode(b"user:secret").decode()
        await _guarded(send, _field(scope, b"authorization") == expected, 'Basic realm="t"')
    elif path == "/bearer":
        await _guarded(send, _field(scope, b"authorization") == "Bearer token-1",
                       'Bearer realm="t"')
    elif path == "/digest":
        ok = _digest_ok(scope["method"], _field(scope, b"authorization"))
        await _guarded(send, ok, f'Digest realm="{REALM}", qop="auth", nonce="{NONCE}", '
                                 'algorithm=MD5')
    else:
        await _respond(send, 404, b"not found")


def _xmlrpc(body: bytes) -> bytes:
    params, method = xmlrpc.client.loads(body)
    if method == "package_releases":
        return xmlrpc.client.dumps((["1.5.1"],), methodresponse=True).encode()
    if method == "get_prime_number_gt":
        n = params[0] + 1
        while any(n % d == 0 for d in range(2, int(n ** 0.5) + 1)):
            n += 1
        return xmlrpc.client.dumps((n,), methodresponse=True).encode()
    if method == "add":
        return xmlrpc.client.dumps((params[0] + params[1],), methodresponse=True).encode()
    return xmlrpc.client.dumps(xmlrpc.client.Fault(1, f"no method {method}")).encode()


_inside = {"now": 0, "most": 0}


async def _inflight(send: Any, wanted: int, wait: float) -> None:
    _inside["now"] += 1
    _inside["most"] = max(_inside["most"], _inside["now"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    seen = _inside["now"]
    while _inside["now"] < wanted and loop.time() < deadline:
        await asyncio.sleep(0.01)
        seen = max(seen, _inside["now"])
    seen = max(seen, _inside["now"])
    await asyncio.sleep(0.02)  # let the others see this one too
    _inside["now"] -= 1
    await _respond(send, 200, str(seen).encode())


async def _guarded(send: Any, ok: bool, challenge: str) -> None:
    if ok:
        await _respond(send, 200, b"welcome")
    else:
        await _respond(send, 401, b"who are you?", headers=[(b"www-authenticate",
                                                             challenge.encode())])


def _digest_ok(method: str, authorization: str | None) -> bool:
    """RFC 7616 with MD5 and qop=auth, for user:secret."""
    if not authorization or not authorization.startswith("Digest "):
        return False
    params = {}
    for part in authorization[7:].split(","):
        key, _, value = part.strip().partition("=")
        params[key] = value.strip('"')

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"user:{REALM}:secret")
    ha2 = md5(f"{method}:{params.get('uri')}")
    expected = md5(f"{ha1}:{NONCE}:{params.get('nc')}:{params.get('cnonce')}:auth:{ha2}")
    return params.get("username") == "user" and params.get("response") == expected


async def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    path = scope["path"]
    if path == "/websocket/deny":
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept"})
    if path == "/websocket/close":
        await send({"type": "websocket.close", "code": 4000, "reason": "go away"})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if path == "/websocket/silent":
            continue
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
