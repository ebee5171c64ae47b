"""What is loaded: a URL (with an optional weight) and the request bytes built for it once.

`parse_target` checks a URL and raises the options' UsageError for one that
cannot be loaded.  `h1_request` builds the whole HTTP/1.1 request, and
`h2_header_block` the HPACK block of an HTTP/2 request (static table and
literals only, never the dynamic table, so one block serves every request of a
run).  Nothing here touches a socket.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from qactuar.protocols.hpack_codec import field_forms

USER_AGENT = "qactuar-load"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Target:
    """One URL of the run."""

    url: str
    scheme: str  # http, https, ws, wss
    host: str
    port: int
    path: str  # path and query, as sent
    weight: int = 1

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def kind(self) -> str:
        """'http' or 'ws'."""
        return "ws" if self.scheme in ("ws", "wss") else "http"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


def parse_target(text: str) -> Target:
    """A Target from 'URL' or 'URL@WEIGHT'; UsageError for anything else."""
    from qactuar.load.options import UsageError

    url, weight = text, 1
    head, at, tail = text.rpartition("@")
    if at and tail.isdigit() and "/" in head.partition("://")[2] + "/":
        url, weight = head, int(tail)
        if weight < 1:
            raise UsageError(f"{text}: a weight must be at least 1")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{text}: not a valid URL ({exc})") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise UsageError(f"{text}: the URL must start with http://, https://, ws:// or wss://")
    if not parts.hostname:
        raise UsageError(f"{text}: the URL has no host")
    host = parts.hostname
    if any(ord(c) < 33 or ord(c) > 126 for c in url):
        raise UsageError(f"{text}: the URL has spaces or control characters")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{text}: {host!r} is not a host") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url, parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme], path, weight)


def request_headers(target: Target, headers: list[tuple[str, str]], body: bytes,
                    method: str) -> list[tuple[str, str]]:
    """The headers every request to `target` carries, the user's replacing defaults."""
    names = {name.lower() for name, _ in headers}
    fields = []
    if "user-agent" not in names:
        fields.append(("user-agent", USER_AGENT))
    fields += [(name.lower(), value) for name, value in headers if name.lower() != "host"]
    if (body or method in ("POST", "PUT", "PATCH")) and "content-length" not in names:
        fields.append(("content-length", str(len(body))))
    return fields


def h1_request(target: Target, headers: list[tuple[str, str]], body: bytes,
               method: str) -> bytes:
    """The whole HTTP/1.1 request, head and body, as written for every request."""
    host = next((value for name, value in headers if name.lower() == "host"), target.authority)
    lines = [f"{method} {target.path} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in request_headers(target, headers, body,
                                                                     method)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def h2_header_block(target: Target, headers: list[tuple[str, str]], body: bytes,
                    method: str) -> bytes:
    """The HPACK block of an HTTP/2 request to `target` (no dynamic table entries)."""
    host = next((value for name, value in headers if name.lower() == "host"), target.authority)
    scheme = "https" if target.tls else "http"
    fields = [(":method", method), (":scheme", scheme), (":authority", host),
              (":path", target.path)]
    fields += [(name, value) for name, value in request_headers(target, headers, body, method)
               if name not in ("connection", "keep-alive", "transfer-encoding", "upgrade")]
    return b"".join(field_forms((name.encode("latin-1"), value.encode("latin-1")))[0]
                    for name, value in fields)
