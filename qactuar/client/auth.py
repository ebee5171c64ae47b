"""Authentication: Basic, Bearer, and Digest (RFC 7616: MD5, SHA-256, SHA-512-256, -sess,
qop=auth).

An `Auth` can `prepare` a request before it is sent (Basic, Bearer, Digest once
it knows the server's challenge) and `answer` a 401 with the request to send
again (Digest), or None to give the 401 to the caller.  A `(user, password)`
tuple sends Basic and switches to Digest when the server challenges with it; a
`(token,)` tuple is a bearer token (aquests' convention).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any

from qactuar.client.errors import AuthError


class Auth:
    """Base class: adds nothing, answers nothing."""

    def prepare(self, request: Any) -> Any:
        return request

    def answer(self, request: Any, response: Any) -> Any:
        return None


class BasicAuth(Auth):
    def __init__(self, username: str, password: str) -> None:
        pair = f"{username}:{password}".encode()
        self._value = b"Basic " + base64.b64encode(pair)

    def prepare(self, request: Any) -> Any:
        return request.with_field(b"authorization", self._value)


class BearerAuth(Auth):
    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}".encode()

    def prepare(self, request: Any) -> Any:
        return request.with_field(b"authorization", self._value)


_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
_STRENGTH = {"MD5": 0, "SHA-256": 1, "SHA-512-256": 2}
_PARAM = re.compile(r'\s*([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


def parse_challenges(values: list[str]) -> list[tuple[str, dict[str, str]]]:
    """The challenges of WWW-Authenticate values: [(scheme lower-case, params)]."""
    challenges = []
    for value in values:
        for match in re.finditer(r"([\w-]+)((?:\s+|$)(?:[\w-]+\s*=\s*(?:\"(?:[^\"\\]|\\.)*\"|"
                                 r"[^,\s]*)\s*,?\s*)*)", value):
            scheme, rest = match.group(1), match.group(2)
            params = {}
            for key, raw in _PARAM.findall(rest or ""):
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                params[key.lower()] = raw
            challenges.append((scheme.lower(), params))
    return challenges


class DigestAuth(Auth):
    """HTTP Digest (RFC 7616) with qop=auth; remembers the challenge for later requests."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._challenge: dict[str, str] | None = None
        self._count = 0

    @staticmethod
    def make_cnonce() -> str:
        """A fresh client nonce (replaced in tests to check RFC 7616's worked example)."""
        return os.urandom(16).hex()

    def prepare(self, request: Any) -> Any:
        if self._challenge is None:
            return request
        return request.with_field(b"authorization", self._header(request).encode())

    def answer(self, request: Any, response: Any) -> Any:
        challenges = [params for scheme, params in
                      parse_challenges(response.headers.get_list("www-authenticate"))
                      if scheme == "digest"]
        if not challenges:
            return None
        usable = [c for c in challenges
                  if _algorithm(c)[0] in _HASHES and _qop_ok(c.get("qop"))]
        if not usable:
            offered = ", ".join(sorted({c.get("algorithm", "MD5") + "/qop=" + c.get("qop", "-")
                                        for c in challenges}))
            raise AuthError(f"the server's Digest challenge cannot be answered ({offered}): "
                            "supported are MD5, SHA-256, SHA-512-256 (and -sess) with qop=auth")
        self._challenge = max(usable, key=lambda c: _STRENGTH[_algorithm(c)[0]])
        self._count = 0
        return request.with_field(b"authorization", self._header(request).encode())

    def _header(self, request: Any) -> str:
        challenge = self._challenge
        assert challenge is not None
        algorithm, session = _algorithm(challenge)
        name = _HASHES[algorithm]

        def digest(text: str) -> str:
            return hashlib.new(name, text.encode()).hexdigest()

        realm = challenge.get("realm", "")
        nonce = challenge.get("nonce", "")
        uri = request.parsed.target
        self._count += 1
        nc = f"{self._count:08x}"
        cnonce = self.make_cnonce()
        ha1 = digest(f"{self.username}:{realm}:{self.password}")
        if session:
            ha1 = digest(f"{ha1}:{nonce}:{cnonce}")
        ha2 = digest(f"{request.method}:{uri}")
        qop = challenge.get("qop")
        username = self.username
        userhash = challenge.get("userhash", "").lower() == "true"
        if userhash:
            username = digest(f"{self.username}:{realm}")
        parts = [f'username="{_quote(username)}"', f'realm="{_quote(realm)}"',
                 f'nonce="{_quote(nonce)}"', f'uri="{_quote(uri)}"',
                 f"algorithm={challenge.get('algorithm', 'MD5')}"]
        if qop is not None:
            value = digest(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            parts += [f'response="{value}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:  # RFC 2069 compatibility
            parts.append(f'response="{digest(f"{ha1}:{nonce}:{ha2}")}"')
        if "opaque" in challenge:
            parts.append(f'opaque="{_quote(challenge["opaque"])}"')
        if userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


def _algorithm(challenge: dict[str, str]) -> tuple[str, bool]:
    algorithm = challenge.get("algorithm", "MD5").upper()
    if algorithm.endswith("-SESS"):
        return algorithm[:-5], True
    return algorithm, False


def _qop_ok(qop: str | None) -> bool:
    return qop is None or "auth" in [q.strip().lower() for q in qop.split(",")]


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class BasicOrDigestAuth(Auth):
    """A (user, password) pair: Basic at once, Digest if the server challenges with it."""

    def __init__(self, username: str, password: str) -> None:
        self._basic = BasicAuth(username, password)
        self._digest = DigestAuth(username, password)
        self._use_digest = False

    def prepare(self, request: Any) -> Any:
        if self._use_digest:
            return self._digest.prepare(request)
        return self._basic.prepare(request)

    def answer(self, request: Any, response: Any) -> Any:
        again = self._digest.answer(request, response)
        if again is not None:
            self._use_digest = True
        return again


def auth_from(value: Any) -> Auth | None:
    """An Auth from what a caller passed: None, an Auth, (user, password) or (token,)."""
    if value is None or isinstance(value, Auth):
        return value
    if isinstance(value, tuple | list):
        if len(value) == 2:
            return BasicOrDigestAuth(str(value[0]), str(value[1]))
        if len(value) == 1:
            return BearerAuth(str(value[0]))
    raise TypeError("auth must be an Auth, a (user, password) pair or a (token,) tuple")
