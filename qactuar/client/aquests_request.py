"""What one aquests call queues: the method, URL, header fields, encoded body, auth, meta.

Owns the translation of aquests' arguments into what the engine sends, done at
the call (so a body that cannot be encoded is a TypeError where the caller made
it, not a failure later inside `fetchall()`): the body encodings of the
`post*`/`put*`/`patch*` families (form, JSON, XML, name-value), query strings for
`get`-like calls, uploads split into fields and files, WebSocket messages as
`(opcode, data)`, and the two response validators, `Accept` (718) and
`Accept-Content-Length` (719).  No I/O here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from qactuar.client.urls import add_params

OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA

# The body type each suffix of the post/put/patch families sends (aquests' names).
CONTENT_TYPES = {
    "form": "application/x-www-form-urlencoded",
    "json": "application/json",
    "xml": "text/xml",
    "nvp": "text/namevalue",
}
# Methods whose params go to the query string; the rest send them as the body.
QUERY_METHODS = frozenset(("GET", "DELETE", "HEAD", "OPTIONS", "TRACE"))


@dataclass
class QueuedRequest:
    """One queued aquests call, ready for the engine."""

    name: str  # the aquests function: "get", "postjson", "upload", "ws", ...
    method: str  # the HTTP method ("GET" for a WebSocket)
    url: str
    headers: list[tuple[str, str]]  # as sent (Accept-Content-Length removed)
    content: bytes | None = None
    data: dict[str, Any] | None = None  # upload(): the plain fields
    files: dict[str, Any] | None = None  # upload(): the file-like values
    auth: Any = None
    callback: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    accept: str | None = None  # the request's Accept, checked against the answer (718)
    max_length: int | None = None  # Accept-Content-Length (719)
    message: tuple[int, Any] | None = None  # ws(): (opcode, data), None to only receive
    rpc_method: str | None = None  # rpc(), jsonrpc(): the method called
    rpc_protocol: str = "xmlrpc"  # or "jsonrpc"
    backend: Any = None  # a backends.base.BackendCall: gRPC or a database, not plain HTTP


def header_pairs(headers: Any) -> list[tuple[str, str]]:
    """A mapping or (name, value) pairs as str pairs (values may be numbers, as in the
    README's Accept-Content-Length example)."""
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(name), str(value)) for name, value in items]


def _find(pairs: list[tuple[str, str]], name: str) -> str | None:
    for key, value in pairs:
        if key.lower() == name:
            return value
    return None


def auth_value(auth: Any) -> Any:
    """aquests' auth forms: (user, password), (token,), or "user:password"."""
    if isinstance(auth, str):
        user, sep, password = auth.partition(":")
        return (user, password) if sep else (user,)
    if isinstance(auth, list):
        return tuple(auth)
    return auth


def _urlencode(params: Any) -> str:
    if isinstance(params, str):
        return params
    if isinstance(params, bytes):
        return params.decode()
    return urlencode(params, doseq=True, quote_via=quote)


def _name_values(params: dict[str, Any]) -> bytes:
    """aquests' text/namevalue: name[length]=value pairs joined with '&'."""
    parts = []
    for name, value in params.items():
        data = value if isinstance(value, bytes) else str(value).encode()
        parts.append(str(name).encode() + b"[%d]=" % len(data) + data)
    return b"&".join(parts)


def encode_body(params: Any, content_type: str) -> bytes:
    """The body of a post/put/patch call for its Content-Type."""
    if params is None:
        return b""
    if isinstance(params, bytes | bytearray):
        return bytes(params)
    if isinstance(params, str):
        return params.encode()
    main = content_type.split(";")[0].strip().lower()
    if main == "application/json" or main.endswith("+json"):
        return json.dumps(params).encode()
    if main == "application/x-www-form-urlencoded" and hasattr(params, "items"):
        return _urlencode(params).encode()
    if main == "text/namevalue" and hasattr(params, "items"):
        return _name_values(params)
    raise TypeError(f"cannot encode {type(params).__name__} params as {content_type}: "
                    "pass str or bytes, or use postjson()/postform()")


def build_http(name: str, method: str, url: str, params: Any, headers: Any, auth: Any,
               callback: Any, meta: dict[str, Any], body_type: str | None = None,
               accept: str | None = None) -> QueuedRequest:
    """The queued request of an HTTP call of the aquests interface."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"{name}(): the URL must be absolute (http:// or https://), "
                         f"not {url!r}")
    pairs = header_pairs(headers)
    limit_value = _find(pairs, "accept-content-length")
    max_length = None
    if limit_value is not None:
        try:
            max_length = int(limit_value)
        except ValueError:
            raise ValueError("Accept-Content-Length must be a number of bytes, "
                             f"not {limit_value!r}") from None
        pairs = [pair for pair in pairs if pair[0].lower() != "accept-content-length"]
    if accept is not None and _find(pairs, "accept") is None:
        pairs.append(("Accept", accept))
    request = QueuedRequest(name, method, url, pairs, auth=auth_value(auth), callback=callback,
                            meta=meta, accept=_find(pairs, "accept"), max_length=max_length)
    if method in QUERY_METHODS:
        if params:
            request.url = add_params(url, _urlencode(params))
        return request
    if name == "upload":
        request.data, request.files = _split_upload(params)
        request.headers = [pair for pair in pairs if pair[0].lower() != "content-type"]
        return request
    content_type = _find(pairs, "content-type")
    if body_type is not None:
        content_type = CONTENT_TYPES[body_type]
        pairs[:] = [pair for pair in pairs if pair[0].lower() != "content-type"]
        pairs.append(("Content-Type", content_type))
    elif content_type is None:
        # aquests 0.7.8: a plain post/put/patch sends a form unless told otherwise.
        content_type = CONTENT_TYPES["form"]
        if params is not None and not isinstance(params, bytes | bytearray | str):
            pairs.append(("Content-Type", content_type))
    request.content = encode_body(params, content_type)
    return request


def _split_upload(params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """upload()'s dict: values with read() are files, the rest plain fields."""
    if not hasattr(params, "items"):
        raise TypeError("upload() takes a dict of fields and open files "
                        "(open them with 'rb')")
    fields = {name: value for name, value in params.items() if not hasattr(value, "read")}
    files = {name: value for name, value in params.items() if hasattr(value, "read")}
    return fields, files


def ws_message(params: Any) -> tuple[int, Any] | None:
    """ws()'s message as (opcode, data): str is text, bytes binary, a tuple says which."""
    if params is None:
        return None
    if isinstance(params, str):
        return OPCODE_TEXT, params
    if isinstance(params, bytes | bytearray | memoryview):
        return OPCODE_BINARY, bytes(params)
    if isinstance(params, tuple) and len(params) == 2:
        opcode, data = params
        if opcode == OPCODE_CONTINUATION:
            raise ValueError("ws(): OPCODE_CONTINUATION only continues a fragmented message; "
                             "ws() sends one whole message (use qactuar.client.websocket "
                             "to send fragments)")
        if opcode not in (OPCODE_TEXT, OPCODE_BINARY, OPCODE_PING, OPCODE_PONG, OPCODE_CLOSE):
            raise ValueError(f"ws(): unknown opcode {opcode!r}")
        if opcode == OPCODE_TEXT:
            data = data.decode() if isinstance(data, bytes) else str(data)
        elif opcode == OPCODE_CLOSE:
            data = data.decode() if isinstance(data, bytes) else str(data or "")
        else:
            data = data.encode() if isinstance(data, str) else bytes(data or b"")
        return opcode, data
    raise TypeError("ws(): the message is str, bytes or an (opcode, data) tuple, "
                    f"not {type(params).__name__}")


def accepts(accept: str, content_type: str | None) -> bool:
    """Whether a response of `content_type` satisfies the request's `Accept` (its media
    ranges, wildcards included; a range with q=0 refuses).  A missing type counts as
    application/octet-stream (RFC 9110 8.3)."""
    main = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    kind, _, subtype = main.partition("/")
    for item in accept.split(","):
        media, *parameters = item.split(";")
        media = media.strip().lower()
        if any(p.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000")
               for p in parameters):
            continue
        want_kind, _, want_subtype = media.partition("/")
        if media == "*/*" or media == "*":
            return True
        if want_kind == kind and want_subtype in ("*", subtype):
            return True
    return False
