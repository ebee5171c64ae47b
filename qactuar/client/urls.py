"""URLs as the engine needs them: the origin a connection serves, the request target.

`parse_url` splits and checks a URL once and remembers the answer (a client
calls the same URLs again and again); `join_url` resolves a redirect's
Location; `add_params` appends query parameters.  Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

from qactuar.client.errors import ClientError

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class InvalidURL(ClientError, ValueError):
    """The URL cannot be requested (no host, an unknown scheme, a bad port)."""

    code = 701


class Origin(NamedTuple):
    """scheme://host:port, the key of a connection pool."""

    scheme: str
    host: str
    port: int

    @property
    def is_tls(self) -> bool:
        return self.scheme in ("https", "wss")


class URL(NamedTuple):
    """A URL split for sending: its origin, Host header value and request target."""

    origin: Origin
    authority: str  # the Host header (the port only when not the default one)
    target: str  # path and query, as sent on the request line
    url: str  # the whole URL, normalised (no fragment)


_CACHE: dict[str, URL] = {}
_CACHE_LIMIT = 2048


def parse_url(url: str) -> URL:
    """The parts of an http(s)/ws(s) URL; raise InvalidURL when it cannot be requested."""
    parsed = _CACHE.get(url)
    if parsed is not None:
        return parsed
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidURL(f"invalid URL {url!r}: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"invalid URL {url!r}: the scheme must be http, https, ws or wss")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"invalid URL {url!r}: no host")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidURL(f"invalid URL {url!r}: spaces or control characters")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    default = DEFAULT_PORTS[scheme]
    port = port or default
    shown_host = f"[{host}]" if ":" in host else host
    authority = shown_host if port == default else f"{shown_host}:{port}"
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    normalised = f"{scheme}://{authority}{target}"
    parsed = URL(Origin(scheme, host, port), authority, target, normalised)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[url] = parsed
    return parsed


def add_params(url: str, params: Any) -> str:
    """`url` with `params` (a mapping or pairs) appended to its query string."""
    query = params if isinstance(params, str) else urlencode(params, doseq=True)
    if not query:
        return url
    base, _, _fragment = url.partition("#")
    joined = f"{base}&{query}" if "?" in base else f"{base}?{query}"
    return joined


def join_url(base: str, location: str) -> str:
    """A redirect's Location resolved against the URL that was requested."""
    return urljoin(base, location.strip())
