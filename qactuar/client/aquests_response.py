"""The Response an aquests callback receives, for HTTP, WebSocket and failed requests.

aquests gave every callback one object with requests-like names whatever
happened: an HTTP answer, a WebSocket message, or a network failure reported
as a 7xx `status_code`.  This module builds that object from what the engine
returns (a `qactuar.client.Response`, a WebSocket `Message`, or a `ClientError`)
and computes the derived views (`data`, `text`, `raw`, headers as a dict) only
when asked.  It does no I/O and never schedules anything: `aquests.py` does.
"""

from __future__ import annotations

import io
import json as jsonlib
from typing import Any

from qactuar.client.errors import CODES, ClientError

__all__ = ["AquestsRequest", "AquestsResponse", "HeaderDict", "ResponseError", "printable"]


class ResponseError(Exception):
    """`raise_for_status()` on a 4xx/5xx answer or a 7xx failure; `status_code` says which."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class HeaderDict(dict):  # type: ignore[type-arg]
    """Header fields by name, looked up in any case (aquests' NocaseDict); a repeated
    field's values become a list, as in aquests."""

    def __init__(self, pairs: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        super().__init__()
        self._names: dict[str, str] = {}
        for name, value in pairs:
            key = self._names.setdefault(name.lower(), name)
            if dict.__contains__(self, key):
                current = dict.__getitem__(self, key)
                if isinstance(current, list):
                    current.append(value)
                else:
                    dict.__setitem__(self, key, [current, value])
            else:
                dict.__setitem__(self, key, value)

    def __getitem__(self, name: str) -> Any:
        return dict.__getitem__(self, self._names.get(name.lower(), name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        if name not in self:
            return default
        return self[name]


class AquestsRequest:
    """What was sent: `method`, `url`, `headers` (a HeaderDict) and `payload` (the body
    bytes; None for a streamed upload of open files, as in aquests)."""

    __slots__ = ("headers", "method", "payload", "url")

    def __init__(self, method: str, url: str, headers: HeaderDict,
                 payload: bytes | None) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.payload = payload

    def get_header(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name, default)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


def printable(text: str) -> str:
    """`text` with control characters escaped as \\xNN (for a terminal)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _split_attributes(value: str) -> tuple[str, dict[str, str | None]]:
    """'text/html; charset=utf-8' -> ('text/html', {'charset': 'utf-8'})."""
    main, *parameters = value.split(";")
    attributes: dict[str, str | None] = {}
    for parameter in parameters:
        parameter = parameter.strip()
        if not parameter:
            continue
        key, sep, item = parameter.partition("=")
        attributes[key.strip().lower()] = item.strip().strip('"') if sep else None
    return main.strip(), attributes


class AquestsResponse:
    """One finished request as aquests reports it.

    Always: `meta` (with `req_id`, `req_method`, `req_callback`), `status_code`
    (HTTP status, or the 7xx code of a failure), `reason`, `content`, `data`,
    `method`, `url`, `request`, `version`, `history`, `logger`, `error` (the
    ClientError of a 7xx, else None), `raise_for_status()`/`reraise()`.
    HTTP: `headers`, `get_header()`, `get_header_with_attr()`, `text`, `json()`,
    `raw`, `cookies`, `encoding`.  WebSocket: `opcode`; `content` is
    `(opcode, data)`.
    """

    def __init__(self, meta: dict[str, Any], request: AquestsRequest, *, status_code: int,
                 reason: str, version: str | None = None, body: bytes = b"",
                 header_pairs: list[tuple[str, str]] | None = None, url: str | None = None,
                 history: list[AquestsResponse] | None = None, error: ClientError | None = None,
                 opcode: int | None = None, message: Any = None,
                 cookies: dict[str, str] | None = None, logger: Any = None,
                 jar: Any = None) -> None:
        self.meta = meta
        self.request = request
        self.status_code = status_code
        self.reason = reason
        self.version = version
        self.url = url or request.url
        self.history = history or []
        self.error = error
        self.opcode = opcode
        self.logger = logger
        self.jar = jar  # the session's CookieJar when configure(cookie=True)
        self._body = body
        self._message = message
        self._pairs = header_pairs or []
        self._headers: HeaderDict | None = None
        self._cookies = cookies
        self._data: Any = None
        self._data_ready = False
        self.encoding = self._charset()

    @classmethod
    def failed(cls, meta: dict[str, Any], request: AquestsRequest, error: ClientError,
               logger: Any = None) -> AquestsResponse:
        """The response of a request that failed with `error` (status_code = its 7xx code)."""
        return cls(meta, request, status_code=error.code, reason=CODES[error.code][0],
                   error=error, logger=logger,
                   opcode=-1 if meta.get("req_method") in ("ws", "wss") else None)

    # -- the head ---------------------------------------------------------------------
    @property
    def method(self) -> str:
        return self.request.method

    @property
    def headers(self) -> HeaderDict:
        if self._headers is None:
            self._headers = HeaderDict(self._pairs)
        return self._headers

    def get_header(self, name: str, default: Any = None) -> Any:
        """The field's value (several values joined with ", "), or `default`."""
        values = [value for key, value in self._pairs if key.lower() == name.lower()]
        if not values:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def get_header_with_attr(self, name: str, default: Any = None) -> tuple[Any, dict[str, Any]]:
        """('text/html', {'charset': 'utf-8'}) for Content-Type: text/html; charset=utf-8."""
        value = self.get_header(name)
        if value is None:
            return default, {}
        return _split_attributes(value)

    def _charset(self) -> str | None:
        value = self.get_header("content-type")
        return _split_attributes(value)[1].get("charset") if value else None

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies of this response's site held by the session (configure(cookie=True)),
        else those this response set."""
        return dict(self._cookies or {})

    def _jar(self) -> Any:
        if self.jar is None:
            raise RuntimeError("the session keeps no cookies: configure(cookie=True)")
        return self.jar

    def set_cookie(self, key: str, val: str, domain: str | None = None,
                   path: str = "/") -> None:
        """Add a cookie to the session's jar, for `domain` (default: this URL's host)."""
        from qactuar.client.urls import parse_url

        host = parse_url(self.url).origin.host
        self._jar().set(key, val, domain or host, path)

    def get_cookie(self, key: str) -> str | None:
        """The value of the session's cookie `key` for this URL, or None."""
        from qactuar.client.urls import parse_url

        field = self._jar().header_for(parse_url(self.url))
        if not field:
            return None
        pairs = (part.split("=", 1) for part in field.decode("latin-1").split("; "))
        return dict(pair for pair in pairs if len(pair) == 2).get(key)

    # -- the body ---------------------------------------------------------------------
    @property
    def content(self) -> Any:
        if self.opcode is not None:
            return (self.opcode, self._message)
        return self._body

    @property
    def raw(self) -> io.BytesIO:
        """The body as a file (read(), readline(), ...), a new one at each access."""
        return io.BytesIO(self._body)

    @property
    def text(self) -> str:
        if self.opcode is not None:
            return self._message if isinstance(self._message, str) else ""
        return self._body.decode(self.encoding or "utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self._body)

    @property
    def data(self) -> Any:
        """The WebSocket message; None after a 7xx; parsed JSON for a JSON answer; else the
        body bytes."""
        if self.opcode is not None:
            return self._message
        if not self._data_ready:
            self._data_ready = True
            content_type = (self.get_header("content-type") or "").lower()
            if self.error is not None:
                self._data = None
            elif self._body and (content_type.startswith("application/json")
                                 or content_type.split(";")[0].strip().endswith("+json")):
                try:
                    self._data = jsonlib.loads(self._body)
                except ValueError:
                    self._data = self._body
            else:
                self._data = self._body
        return self._data

    def set_data(self, value: Any) -> None:
        """Set what `data` gives (an RPC result) instead of the body."""
        self._data = value
        self._data_ready = True

    # -- errors -----------------------------------------------------------------------
    def raise_for_status(self) -> None:
        """Raise for a 7xx failure (its ClientError) or a 4xx/5xx answer (ResponseError)."""
        if self.error is not None:
            raise self.error
        if self.status_code >= 400:
            raise ResponseError(f"{self.status_code} {self.reason} for {self.url}",
                                self.status_code)

    reraise = raise_for_status

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"
