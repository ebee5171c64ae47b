"""The cookie jar (RFC 6265): domain, path, expiry, Secure; one per Client.

Our own small jar rather than `http.cookiejar`: that one wants urllib's
Request/Response objects (every client wraps its own in adapters per request),
implements Netscape and RFC 2965 policies nobody sends any more, and costs its
policy checks on every request.  RFC 6265's storage and matching rules fit
here; a jar that is empty costs a request one truth test.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any


@dataclass
class Cookie:
    name: str
    value: str
    domain: str = ""  # lower case, no leading dot
    host_only: bool = True
    path: str = "/"
    expires: float | None = None  # time.time() seconds; None: until the Client closes
    secure: bool = False
    explicit_path: bool = False


def parse_set_cookie(line: str) -> Cookie | None:
    """A Set-Cookie value as a Cookie (domain and path as given); None when unusable."""
    pair, *attributes = line.split(";")
    name, sep, value = pair.partition("=")
    name = name.strip()
    if not sep or not name:
        return None
    cookie = Cookie(name, value.strip().strip('"'))
    max_age = None
    for attribute in attributes:
        key, _, raw = attribute.partition("=")
        key = key.strip().lower()
        raw = raw.strip()
        if key == "domain" and raw:
            cookie.domain = raw.lstrip(".").lower()
            cookie.host_only = False
        elif key == "path" and raw.startswith("/"):
            cookie.path = raw
            cookie.explicit_path = True
        elif key == "max-age":
            with contextlib.suppress(ValueError):
                max_age = int(raw)
        elif key == "expires" and max_age is None:
            with contextlib.suppress(TypeError, ValueError):
                cookie.expires = parsedate_to_datetime(raw).timestamp()
        elif key == "secure":
            cookie.secure = True
    if max_age is not None:
        cookie.expires = time.time() + max_age if max_age > 0 else 0.0
    return cookie


def domain_matches(host: str, domain: str) -> bool:
    if host == domain:
        return True
    return host.endswith("." + domain) and not host.replace(".", "").isdigit()


def path_matches(request_path: str, cookie_path: str) -> bool:
    if request_path == cookie_path:
        return True
    if request_path.startswith(cookie_path):
        return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    return False


def default_path(request_path: str) -> str:
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[:request_path.rindex("/")]


class CookieJar:
    """Cookies by (domain, path, name)."""

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}

    def __bool__(self) -> bool:
        return bool(self._cookies)

    def __len__(self) -> int:
        return len(self._cookies)

    def __iter__(self) -> Any:
        return iter(list(self._cookies.values()))

    def get(self, name: str, default: str | None = None) -> str | None:
        for cookie in self._cookies.values():
            if cookie.name == name:
                return cookie.value
        return default

    def set(self, name: str, value: str, domain: str, path: str = "/") -> None:
        """Add a cookie by hand (sent to `domain` and its subdomains under `path`)."""
        domain = domain.lstrip(".").lower()
        self._cookies[domain, path, name] = Cookie(name, value, domain, False, path)

    def clear(self) -> None:
        self._cookies.clear()

    def extract(self, response: Any) -> None:
        """Store the cookies `response` sets (Set-Cookie fields) for its request's URL."""
        lines = [value for name, value in response.raw_headers
                 if len(name) == 10 and name.lower() == b"set-cookie"]
        if not lines:
            return
        parsed = response.request.parsed
        host = parsed.origin.host.lower()
        path = parsed.target.split("?", 1)[0]
        found = {}
        for line in lines:
            cookie = parse_set_cookie(line.decode("latin-1"))
            if cookie is None:
                continue
            found[cookie.name] = cookie.value
            if cookie.host_only:
                cookie.domain = host
            elif not domain_matches(host, cookie.domain):
                continue  # a server may not set cookies for another site
            if not cookie.explicit_path:
                cookie.path = default_path(path)
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.expires is not None and cookie.expires <= time.time():
                self._cookies.pop(key, None)
            else:
                self._cookies[key] = cookie
        response.set_cookies = found

    def header_for(self, parsed: Any) -> bytes | None:
        """The Cookie field value for a request to `parsed` (a urls.URL), or None."""
        host = parsed.origin.host.lower()
        path = parsed.target.split("?", 1)[0]
        secure = parsed.origin.is_tls
        now = time.time()
        chosen = []
        expired = []
        for key, cookie in self._cookies.items():
            if cookie.expires is not None and cookie.expires <= now:
                expired.append(key)
                continue
            if cookie.secure and not secure:
                continue
            if cookie.host_only:
                if host != cookie.domain:
                    continue
            elif not domain_matches(host, cookie.domain):
                continue
            if not path_matches(path, cookie.path):
                continue
            chosen.append(cookie)
        for key in expired:
            del self._cookies[key]
        if not chosen:
            return None
        chosen.sort(key=lambda c: -len(c.path))  # longer paths first (RFC 6265 5.4)
        return "; ".join(f"{c.name}={c.value}" for c in chosen).encode("latin-1")

    def add_cookie_field(self, request: Any) -> Any:
        value = self.header_for(request.parsed)
        if value is None:
            return request
        return request.with_field(b"cookie", value)
