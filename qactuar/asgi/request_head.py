# cython: annotation_typing=False
"""The one entry from a request head to its ASGI scope and the app that serves it.

Every wire protocol (HTTP/1.1 in `protocols/http1.py`, HTTP/2 in
`protocols/http2.py`, later HTTP/3) parses a request head its own way, then
calls `request_scope` once per request with what it read: method, raw target,
HTTP version, header fields (lower-cased names, as ASGI wants them), the Host
value, the declared body length, scheme, client, server and the protocol's
scope extensions.  Here, in one place:

- the request is checked against the server's `Limits` (414, 431, 413) and the
  rules every version shares (CONNECT 501; an invalid target or Host 400),
  raising `RefusedRequest`;
- the target is split into `raw_path`, `path` and `query_string`;
- the scope is built (a copy of the server's shared fields plus this request's);
- the mount is resolved (APPS, ROOT_PATH) and its app returned.

What only a protocol can see stays there: a head still arriving (HTTP/1.1
bounds its URL and fields while they stream in), framing (Transfer-Encoding,
Content-Length syntax), HTTP/1.1's one-Host rule, HTTP/2's pseudo-headers.
This module never touches bytes on the wire.  Compiled (request_head.pxd),
`request_scope` is a C call from HTTP/1.1; its types are the `.pxd`'s (the
annotations here are for readers and type checkers only).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import httptools

if TYPE_CHECKING:
    from qactuar.asgi.router import Mount
    from qactuar.server_state import ServerState

_PERCENT, _QUERY, _FRAGMENT = ord("%"), ord("?"), ord("#")
# RFC 9112 3.2 / RFC 3986 3.2.2: a Host value is uri-host [":" port]: reg-name
# characters (unreserved, percent-encoded, sub-delims), or an IP literal in [].
_HOST_VALUE = re.compile(rb"(?:\[[0-9A-Fa-f:.vV\-._~!$&'()*+,;=]*\]"
                         rb"|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?\Z").match
# Host values found valid: clients send the same few, so each is checked once.
# Bounded, as the values are the client's to choose.
_VALID_HOSTS: dict[bytes, bool] = {}
_VALID_HOSTS_LIMIT = 256


class RefusedRequest(Exception):
    """The request is answered with `status` and `reason` instead of reaching an app.

    `extra_head`: header lines HTTP/1.1 adds to the refusal (already framed
    as `name: value\\r\\n`), such as a WebSocket version.
    """

    def __init__(self, status: int, reason: str, extra_head: bytes = b"") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra_head = extra_head


def request_scope(state: ServerState, method: str, target: bytes, http_version: str,
                  headers: list[tuple[bytes, bytes]], host: bytes | None,
                  content_length: int | None, scheme: str, client: tuple[str, int] | None,
                  server: tuple[str, int] | None, extensions: dict[str, Any],
                  forwarded: bool | None = None) -> tuple[dict[str, Any], Any]:
    """(scope, app) of a request head, or `RefusedRequest` for one the server refuses.

    `host`: the Host field (HTTP/2: `:authority`), None if the request has
    none.  `content_length`: the body size the request declares, if any.
    `scheme`: "http"/"https" (HTTP/2: `:scheme`).  `extensions`: the scope's
    `extensions`, the protocol's to fill.  `forwarded`: whether the head
    carries a `Forwarded`/`X-Forwarded-*` field (proxy_headers.py), if the
    protocol noted it while parsing (False: none, so nothing is looked for);
    None: look.
    """
    limits = state.limits
    if method == "CONNECT":
        raise RefusedRequest(501, "Not Implemented: CONNECT is not supported")
    if len(target) > limits.max_url_size:
        raise RefusedRequest(414, "URI Too Long")
    if len(headers) > limits.max_header_count:
        raise RefusedRequest(431, "Request Header Fields Too Large: too many header fields")
    if content_length is not None and limits.max_body_size and (
            content_length > limits.max_body_size):
        raise RefusedRequest(413, "Content Too Large")
    if host is not None and host not in _VALID_HOSTS:
        _check_host(host)
    raw_path: bytes  # typed (request_head.pxd): decoded by a C call when compiled
    if target.startswith(b"/") and _QUERY not in target and _FRAGMENT not in target:
        # A plain path (the protocol has checked its bytes): nothing to split.
        raw_path = target
        query = b""
    else:
        raw_path, query = _split_target(target, method)
    # Ints: `b"%" in` would raise and catch a TypeError inside bytes.__contains__.
    if _PERCENT in raw_path:
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("ascii", "replace")
    root_path = state.root_path
    if forwarded is not False and state.proxy is not None:
        # Behind a trusted proxy: the client, scheme, server (and prefix) it reports.
        view = state.proxy.resolve(headers, client, scheme, server)
        if view is not None:
            client, scheme, server, headers = view.client, view.scheme, view.server, view.headers
            root_path = view.prefix + root_path
    if root_path:
        path = root_path + path
    # A copy of the fields every request shares, then this request's own:
    # cheaper than building a thirteen-key dict from nothing.
    scope = state.http_scope.copy()
    if http_version != "1.1":
        scope["http_version"] = http_version
    if scheme != state.scheme:
        scope["scheme"] = scheme
    scope["method"] = method
    scope["path"] = path
    scope["raw_path"] = raw_path
    if query:
        scope["query_string"] = query
    scope["headers"] = headers
    scope["client"] = client
    scope["server"] = server
    scope["extensions"] = extensions
    router = state.router
    # Mount prefixes are matched below ROOT_PATH, which a proxy has stripped.
    mount: Mount | None = router.only or router.resolve(path[len(root_path):])
    if root_path is not state.root_path:
        scope["root_path"] = root_path
    if mount is None:
        return scope, state.not_found_app
    if mount.prefix:
        scope["root_path"] = root_path + mount.prefix
    scope["state"] = mount.state.copy()
    return scope, mount.app


def _check_host(host: bytes) -> None:
    if _HOST_VALUE(host) is None:
        raise RefusedRequest(400, "Bad Request: invalid Host header")
    if len(_VALID_HOSTS) < _VALID_HOSTS_LIMIT and len(host) <= 255:
        _VALID_HOSTS[host] = True


def _split_target(target: bytes, method: str) -> tuple[bytes, bytes]:
    """(raw path, query) of a request target that is not a plain path."""
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise RefusedRequest(400, "Bad Request: invalid request target") from None
    raw_path = url.path or b"/"
    if not raw_path.startswith(b"/") and not (raw_path == b"*" and method == "OPTIONS"):
        raise RefusedRequest(400, "Bad Request: invalid request target")
    return raw_path, url.query or b""


def refused_scope(state: ServerState, method: str, target: bytes, http_version: str,
                  headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None,
                  server: tuple[str, int] | None) -> dict[str, Any]:
    """The scope of a request refused by `request_scope` that still gets a stream
    (HTTP/2 answers a refusal on its stream): what the access log and the
    refusal need, with the target as sent."""
    scope = state.http_scope.copy()
    scope["http_version"] = http_version
    scope["method"] = method
    scope["path"] = target.decode("latin-1")
    scope["raw_path"] = target
    scope["headers"] = headers
    scope["client"] = client
    scope["server"] = server
    scope["extensions"] = {}
    return scope
