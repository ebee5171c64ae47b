"""Request, Response and Headers: what a caller holds.

A Response is filled in by a connection (HTTP/1.1 or HTTP/2) as the answer
arrives; everything derived from it (text, json, cookies, decoded content) is
computed when first asked for, so a caller that only reads `status_code` and
`content` pays for nothing else.  No I/O here except `aiter_bytes()`, which
takes chunks from the connection that is still receiving a streamed body.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Any

from qactuar.client.cookies import parse_set_cookie
from qactuar.client.decoding import Decoder, decode_all
from qactuar.client.errors import ClientError, HTTPStatusError

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
REASON_PHRASES = {status.value: status.phrase for status in HTTPStatus}
# The usual reason phrases as str: a dict look-up costs less than decoding the bytes.
REASON_TEXT = {status.phrase.encode("latin-1"): status.phrase for status in HTTPStatus}


def head_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """The `(name, value)` fields of an HTTP/1.x response head (status line first, lines
    ending in CRLF, without the empty line), which httptools has already validated: a
    value loses its leading blanks, as httptools' own `on_header` gives it."""
    fields = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.append((name, value.lstrip(b" \t")))
    return fields


class Headers:
    """Case-insensitive, multi-valued header fields, kept in the order received.

    Built from `(name, value)` bytes pairs (names in any case); read with str names and
    values (latin-1, as HTTP defines them).
    """

    __slots__ = ("_lower", "raw")

    def __init__(self, fields: Any = None) -> None:
        self.raw: list[tuple[bytes, bytes]] = []
        self._lower: dict[str, list[str]] | None = None
        if fields:
            items = fields.items() if hasattr(fields, "items") else fields
            for name, value in items:
                self.raw.append((_to_bytes(name), _to_bytes(value)))

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        headers = cls.__new__(cls)
        headers.raw = raw
        headers._lower = None
        return headers

    def _index(self) -> dict[str, list[str]]:
        index = self._lower
        if index is None:
            index = {}
            for name, value in self.raw:
                index.setdefault(name.decode("latin-1").lower(), []).append(
                    value.decode("latin-1"))
            self._lower = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The field's value (several values joined with ", "), or `default`."""
        values = self._index().get(name.lower())
        if not values:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def get_list(self, name: str) -> list[str]:
        """Every value of the field, one per line received (Set-Cookie stays apart)."""
        return list(self._index().get(name.lower(), ()))

    def items(self) -> list[tuple[str, str]]:
        """Every field as `(lower-case name, value)`, in order, repeats included."""
        return [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in self.raw]

    def keys(self) -> list[str]:
        return list(self._index())

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index()

    def __iter__(self) -> Iterator[str]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.items() == other.items()
        if isinstance(other, dict):
            return {k.lower(): v for k, v in other.items()} == {
                k: ", ".join(v) for k, v in self._index().items()}
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("latin-1")


class Request:
    """What was sent: method, url, header fields and body (None when streamed)."""

    __slots__ = ("content", "headers", "method", "url")

    def __init__(self, method: str, url: str, headers: Headers, content: bytes | None) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.content = content

    def __repr__(self) -> str:
        return f"<Request [{self.method} {self.url}]>"


class Response:
    """An HTTP response.  The engine fills the fields; `content` is the decoded body."""

    __slots__ = ("_body", "_content", "_head", "_headers", "_raw", "_reason", "_stream", "_text",
                 "coding", "elapsed", "has_cookies", "history", "http_version", "request",
                 "set_cookies", "status_code", "url")

    def __init__(self) -> None:
        self.status_code = 0
        self._reason: str | None = None  # None: read from `_head` (or the status) when asked
        self.http_version = "HTTP/1.1"
        # An HTTP/1.1 answer keeps its head's bytes and splits them into fields only
        # when asked (most callers never look); HTTP/2 gives the fields as a list.
        self._head: bytes | None = None
        self._raw: list[tuple[bytes, bytes]] | None = None
        self.url = ""
        self.request: Request | None = None
        self.history: list[Response] = []
        self.elapsed = 0.0
        self._body: bytes | None = None  # the body as received (still encoded)
        self._content: bytes | None = None
        self._text: str | None = None
        self._headers: Headers | None = None
        # Whether a Content-Encoding field came (its value, or True), noted by the connection.
        self.coding: bytes | bool | None = None
        self.has_cookies = False  # a Set-Cookie field arrived (the jar looks only then)
        self.set_cookies: dict[str, str] | None = None
        self._stream: Any = None  # the receiving end of a streamed body, until read

    # -- the head -------------------------------------------------------------------------
    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The header fields as received, `(name, value)` bytes pairs in order."""
        raw = self._raw
        if raw is None:
            head = self._head
            raw = self._raw = [] if head is None else head_fields(head)
        return raw

    @raw_headers.setter
    def raw_headers(self, fields: list[tuple[bytes, bytes]]) -> None:
        self._raw = fields
        self._headers = None

    @property
    def reason(self) -> str:
        """The reason phrase (HTTP/1.x), or the status's usual one (HTTP/2 has none)."""
        reason = self._reason
        if reason is None:
            head = self._head
            if head is None:
                reason = REASON_PHRASES.get(self.status_code, "")
            else:
                status_line = head.split(b"\r\n", 1)[0].split(b" ", 2)
                phrase = status_line[2] if len(status_line) == 3 else b""
                reason = REASON_TEXT.get(phrase) or phrase.decode("latin-1")
            self._reason = reason
        return reason

    @reason.setter
    def reason(self, reason: str) -> None:
        self._reason = reason

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers.from_raw(self.raw_headers)
        return headers

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECT_STATUSES and "location" in self.headers

    @property
    def encoding(self) -> str | None:
        """The charset of the Content-Type, if it names one."""
        content_type = self.headers.get("content-type")
        if not content_type:
            return None
        for parameter in content_type.split(";")[1:]:
            key, _, value = parameter.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"').strip() or None
        return None

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies this response set (name -> value)."""
        if self.set_cookies is not None:
            return self.set_cookies
        found = {}
        for line in self.headers.get_list("set-cookie"):
            cookie = parse_set_cookie(line)
            if cookie is not None:
                found[cookie.name] = cookie.value
        self.set_cookies = found
        return found

    # -- the body -------------------------------------------------------------------------
    @property
    def content(self) -> bytes:
        content = self._content
        if content is None:
            if self._stream is not None:
                raise ClientError("the body of a streamed response has not been read: "
                                  "use `await response.aread()` or `aiter_bytes()`")
            content = self._body or b""
            if self.coding is not None and content:
                encoding = self.headers.get("content-encoding") or ""
                content = decode_all(encoding, content)
            self._content = content
        return content

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.content.decode(self.encoding or "utf-8", errors="replace")
        return self._text

    def json(self, **kwargs: Any) -> Any:
        return jsonlib.loads(self.content, **kwargs)

    async def aread(self) -> bytes:
        """The whole body of a streamed response (kept as `content`)."""
        if self._content is None and self._stream is not None:
            content = b"".join([chunk async for chunk in self.aiter_bytes()])
            self._content = content
        return self.content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, decoded, chunk by chunk as it arrives (streamed responses)."""
        stream = self._stream
        if stream is None:
            content = self.content
            if content:
                yield content
            return
        decoder = None
        encoding = self.headers.get("content-encoding")
        if encoding:
            decoder = Decoder(encoding)
        async for chunk in stream:
            if decoder is not None:
                chunk = decoder.decode(chunk)
            if chunk:
                yield chunk
        if decoder is not None:
            tail = decoder.flush()
            if tail:
                yield tail
        self._stream = None

    async def aclose(self) -> None:
        """Give up the rest of a streamed body (its connection is closed, not reused)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abandon()

    def raise_for_status(self) -> Response:
        """Raise HTTPStatusError for a 4xx or 5xx status; return the response otherwise."""
        if self.status_code >= 400:
            kind = "client error" if self.status_code < 500 else "server error"
            raise HTTPStatusError(f"{self.status_code} {self.reason} ({kind}) for {self.url}",
                                  response=self)
        return self

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"
