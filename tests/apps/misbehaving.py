"""An ASGI app that breaks the ASGI rules on purpose, plus slow and observable endpoints.

Paths not listed here are answered by `apps.basic:app` (/hello, /echo, /sleep ...).

  /inject/value       a header value holding "\\r\\nx-injected: yes"
  /inject/name        a header name holding "\\r\\nx-injected: yes"
  /inject/lf          a header value holding a bare "\\nx-injected: yes"
  /bad-status/int     status 99
  /bad-status/str     status "200" (a string)
  /str-body           a str body instead of bytes
  /body-after-end     a complete response, then one more body message
  /unknown-type       a message of an unknown type instead of http.response.start
  /mapping-messages   a valid response sent as an OrderedDict and a read-only mapping proxy
                      (not plain dicts: allowed, answered "mapped")
  /not-a-mapping      a list of pairs instead of a message dict
  /short-body         declares content-length 10, sends 5 bytes and ends the body
  /short-body-streamed  the same, in two body messages (the head is out first)
  /long-body          declares content-length 10, sends 15 bytes
  /no-response        returns without sending anything
  /bad-length         declares content-length "1x"
  /differing-lengths  declares content-length twice, 10 and 5
  /header-pairs?v=V   a valid response whose header pairs are a tuple, a list and one
                      with the value V: "x-tuple: yes", "x-list: yes", "x-value: V"
  /cancellable?file=F&started=S
                      writes S when it starts, then sleeps; writes "cancelled" to F when it
                      gets CancelledError (and re-raises it)
  /slow-stream?n=K&delay=D
                      starts a response at once, then sends K chunks "part-<i>\\n" D seconds
                      apart
  /marked-sleep?s=X&started=S
                      writes S when it starts, then answers "slept" after X seconds
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

from apps.basic import app as basic_app

INJECTED = b"\r\nx-injected: yes"


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def _start(send: Any, status: Any = 200,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await basic_app(scope, receive, send)
        return
    path = scope["path"]
    query = _query(scope)
    if path == "/inject/value":
        await _start(send, headers=[(b"x-ok", b"fine" + INJECTED)])
        await send({"type": "http.response.body", "body": b"injected"})
    elif path == "/inject/name":
        await _start(send, headers=[(b"x-ok" + INJECTED, b"fine")])
        await send({"type": "http.response.body", "body": b"injected"})
    elif path == "/inject/lf":
        await _start(send, headers=[(b"x-ok", b"fine\nx-injected: yes")])
        await send({"type": "http.response.body", "body": b"injected"})
    elif path == "/bad-status/int":
        await _start(send, status=99)
        await send({"type": "http.response.body", "body": b"bad status"})
    elif path == "/bad-status/str":
        await _start(send, status="200")
        await send({"type": "http.response.body", "body": b"bad status"})
    elif path == "/str-body":
        await _start(send, headers=[(b"content-type", b"text/plain")])
        await send({"type": "http.response.body", "body": "a str body"})
    elif path == "/body-after-end":
        await _start(send, headers=[(b"content-length", b"5")])
        await send({"type": "http.response.body", "body": b"first"})
        await send({"type": "http.response.body", "body": b"HTTP/1.1 299 Smuggled\r\n\r\n"})
    elif path == "/unknown-type":
        await send({"type": "http.response.bogus", "status": 200})
    elif path == "/mapping-messages":
        await send(OrderedDict(type="http.response.start", status=200,
                               headers=[(b"content-type", b"text/plain")]))
        await send(MappingProxyType({"type": "http.response.body", "body": b"mapped"}))
    elif path == "/not-a-mapping":
        await send([("type", "http.response.start"), ("status", 200)])
    elif path == "/short-body":
        await _start(send, headers=[(b"content-length", b"10")])
        await send({"type": "http.response.body", "body": b"12345"})
    elif path == "/short-body-streamed":
        await _start(send, headers=[(b"content-length", b"10")])
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/long-body":
        await _start(send, headers=[(b"content-length", b"10")])
        await send({"type": "http.response.body", "body": b"123456789012345"})
    elif path == "/no-response":
        return
    elif path == "/cancellable":
        Path(query["started"]).write_text("started")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            Path(query["file"]).write_text("cancelled")
            raise
        await _start(send)
        await send({"type": "http.response.body", "body": b"not cancelled"})
    elif path == "/slow-stream":
        await _start(send, headers=[(b"content-type", b"text/plain")])
        for i in range(int(query.get("n", "5"))):
            await asyncio.sleep(float(query.get("delay", "0.2")))
            await send({"type": "http.response.body", "body": f"part-{i}\n".encode(),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/marked-sleep":
        Path(query["started"]).write_text("started")
        await asyncio.sleep(float(query.get("s", "1")))
        await _start(send, headers=[(b"content-type", b"text/plain")])
        await send({"type": "http.response.body", "body": b"slept"})
    elif path == "/bad-length":
        await _start(send, headers=[(b"content-length", b"1x")])
        await send({"type": "http.response.body", "body": b"1"})
    elif path == "/differing-lengths":
        await _start(send, headers=[(b"content-length", b"10"), (b"content-length", b"5")])
        await send({"type": "http.response.body", "body": b"12345"})
    elif path == "/header-pairs":
        value = query.get("v", "").encode()
        await _start(send, headers=[(b"x-tuple", b"yes"), [b"x-list", b"yes"],
                                    (b"x-value", value), (b"content-length", b"5")])
        await send({"type": "http.response.body", "body": b"pairs"})
    else:
        await basic_app(scope, receive, send)
