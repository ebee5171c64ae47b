# cython: annotation_typing=False
"""HTTP/2 header fields: the checks on what a client sends, the shape of what we send.

A request's header block is checked here against RFC 9113 8.2 and 8.3 (field
names and values, connection-specific fields, `te`, pseudo-header fields) and
read into what the scope needs, in one pass; `h2`'s own inbound checks are
turned off for it, as its chain of generators per field costs more than the
rest of a request.  The field pairs that passed are remembered (bounded, never
evicting): clients send the same few pairs on every request.  A block that
breaks a rule raises `MalformedFields`: the protocol resets that stream.
This module never touches the wire and never builds ASGI messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Header fields that mean something only to one HTTP/1.1 connection (RFC 9113 8.2.2).
CONNECTION_HEADERS = frozenset({b"connection", b"transfer-encoding", b"keep-alive",
                                b"upgrade", b"proxy-connection"})
# A field name holds no control byte, space, upper-case letter, DEL, byte over 0x7f
# or colon (pseudo-header names are checked by name instead) (RFC 9113 8.2.1).
_BAD_NAME_BYTE = re.compile(rb"[^\x21-\x39\x3b-\x40\x5b-\x7e]").search
# A field value holds no NUL, CR or LF, and neither starts nor ends with SP or HTAB.
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z").search
_REQUEST_PSEUDO_HEADERS = frozenset({b":method", b":scheme", b":authority", b":path",
                                     b":protocol"})
# Pairs seen before and found well-formed.  Bounded in count and in the size of
# each pair, and never evicting, so that a client sending ever new (or huge)
# values cannot grow it: at most about 1 MiB.
_CHECKED_PAIRS: dict[tuple[bytes, bytes], None] = {}
_CHECKED_PAIRS_LIMIT = 4096
_CHECKED_PAIR_SIZE = 256

RequestHead = tuple[bytes, bytes | None, bytes | None, bytes | None, bytes | None,
                    list[tuple[bytes, bytes]], int | None]


class MalformedFields(ValueError):
    """A header block that breaks RFC 9113 8.2/8.3: a stream error, PROTOCOL_ERROR."""


def _check_pair(pair: tuple[bytes, bytes]) -> None:
    """One field on its own: its name, its value, and the fields HTTP/2 forbids."""
    name, value = pair
    if not name:
        raise MalformedFields("empty header field name")
    if name[0] == 58:  # b":"
        if name not in _REQUEST_PSEUDO_HEADERS:
            raise MalformedFields(f"unknown or response pseudo-header field {name!r}")
    elif _BAD_NAME_BYTE(name):
        raise MalformedFields(f"invalid header field name {name!r}")
    if _BAD_VALUE(value):
        raise MalformedFields(f"invalid value in header field {name!r}")
    if name in CONNECTION_HEADERS:
        raise MalformedFields(f"connection-specific header field {name!r}")
    if name == b"te" and value.lower() != b"trailers":
        raise MalformedFields(f"te header field other than trailers: {value!r}")
    if (len(_CHECKED_PAIRS) < _CHECKED_PAIRS_LIMIT
            and len(name) + len(value) <= _CHECKED_PAIR_SIZE):
        _CHECKED_PAIRS[pair] = None


def read_request_head(block: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    """Check a request's header block and read it.

    Returns (method, path, scheme, authority, protocol, headers, content_length):
    the pseudo-header fields (None where absent), the other fields as the
    scope's `headers` (a `host` from `:authority` first where the client sent
    none, crumbs of `cookie` joined in one field, RFC 9113 8.2.3), and the
    Content-Length when it is all digits.  Raises `MalformedFields`.
    """
    method = path = scheme = authority = protocol = host = None
    headers: list[tuple[bytes, bytes]] = []
    content_length = None
    cookies: list[bytes] | None = None
    checked = _CHECKED_PAIRS
    for pair in block:
        if pair not in checked:
            _check_pair(pair)
        name, value = pair
        if name[0] == 58:  # b":": a pseudo-header field, never passed on as a header
            if headers or cookies is not None:
                raise MalformedFields(f"pseudo-header field {name!r} after a regular field")
            if name == b":method":
                if method is not None:
                    raise MalformedFields("duplicate :method")
                method = value
            elif name == b":path":
                if path is not None:
                    raise MalformedFields("duplicate :path")
                path = value
            elif name == b":scheme":
                if scheme is not None:
                    raise MalformedFields("duplicate :scheme")
                scheme = value
            elif name == b":authority":
                if authority is not None:
                    raise MalformedFields("duplicate :authority")
                authority = value
            else:
                if protocol is not None:
                    raise MalformedFields("duplicate :protocol")
                protocol = value
            continue
        if name == b"host":
            if host is not None:
                raise MalformedFields("more than one host header field")
            host = value
        elif name == b"cookie":
            if cookies is None:
                cookies = []
            cookies.append(value)
            continue
        elif name == b"content-length" and value.isdigit():
            content_length = int(value)
        headers.append((name, value))
    if method is None:
        raise MalformedFields("no :method")
    if method == b"CONNECT" and protocol is None:
        if scheme is not None or path is not None:
            raise MalformedFields("CONNECT with :scheme or :path")
    else:
        if scheme is None or not path:
            raise MalformedFields("no :scheme or no (or an empty) :path")
        if protocol is not None and method != b"CONNECT":
            raise MalformedFields(":protocol on a request other than CONNECT")
    if authority is None:
        if host is None:
            raise MalformedFields("neither :authority nor host")
    elif host is None:
        headers.insert(0, (b"host", authority))
    elif host != authority:
        raise MalformedFields(":authority and host differ")
    if cookies is not None:
        headers.append((b"cookie", b"; ".join(cookies)))
    return method, path, scheme, authority, protocol, headers, content_length


def check_trailers(block: Iterable[tuple[bytes, bytes]]) -> None:
    """Check a request's trailer block: well-formed fields, no pseudo-header field."""
    checked = _CHECKED_PAIRS
    for pair in block:
        if pair[0][:1] == b":":
            raise MalformedFields(f"pseudo-header field {pair[0]!r} in trailers")
        if pair not in checked:
            _check_pair(pair)


def response_fields(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Header fields as HTTP/2 wants them: lower-case names, no connection-specific fields."""
    fields = []
    for name, value in headers:
        name = name.lower()
        if name not in CONNECTION_HEADERS:
            fields.append((name, value))
    return fields
