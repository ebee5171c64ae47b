"""gRPC calls over the client's own HTTP/2: `grpc("http://host:port/package.Service")`
gives a stub whose methods take and return protobuf messages.

Owns the gRPC wire format on top of an HTTP/2 exchange: the request (POST to
`/package.Service/Method`, `application/grpc`, `te: trailers`, `grpc-timeout`),
the length-prefixed messages (compressed ones inflated per `grpc-encoding`:
gzip, deflate), the status in the trailers (or in a trailers-only answer), and
the method's shape, looked up in protobuf's default descriptor pool, which
holds every service whose `_pb2` module was imported: a unary or
client-streaming method answers one message, a server-streaming or
bidirectional one a list.  A client-streaming method takes an iterable of
messages.  `http://` URLs use HTTP/2 with prior knowledge (h2c), `https://`
ALPN.  A status other than OK is a GrpcError (a QueryError whose status_code
is the HTTP mapping of the gRPC code, as Google's APIs map them).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import Any
from urllib.parse import unquote

from qactuar.client.backends.base import BackendCall, Outcome, Pools, QueryError, require
from qactuar.client.errors import ProtocolError

# gRPC status code -> (name, HTTP status)
STATUSES: dict[int, tuple[str, int]] = {
    0: ("OK", 200), 1: ("CANCELLED", 499), 2: ("UNKNOWN", 500), 3: ("INVALID_ARGUMENT", 400),
    4: ("DEADLINE_EXCEEDED", 504), 5: ("NOT_FOUND", 404), 6: ("ALREADY_EXISTS", 409),
    7: ("PERMISSION_DENIED", 403), 8: ("RESOURCE_EXHAUSTED", 429),
    9: ("FAILED_PRECONDITION", 400), 10: ("ABORTED", 409), 11: ("OUT_OF_RANGE", 400),
    12: ("UNIMPLEMENTED", 501), 13: ("INTERNAL", 500), 14: ("UNAVAILABLE", 503),
    15: ("DATA_LOSS", 500), 16: ("UNAUTHENTICATED", 401),
}
_PREFIX = struct.Struct(">BI")


class GrpcError(QueryError):
    """A gRPC status other than OK: `code` (int), `name` ("NOT_FOUND"), `message`."""

    def __init__(self, code: int, message: str, outcome: Outcome | None = None) -> None:
        name, http_status = STATUSES.get(code, (f"STATUS_{code}", 500))
        super().__init__(message, reason=name, status_code=http_status, outcome=outcome)
        self.code = code
        self.name = name


def split_url(url: str) -> tuple[str, str]:
    """'http://h:p/prefix/package.Service' -> ('http://h:p/prefix', 'package.Service')."""
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"grpc(): the URL is http(s)://host:port/package.Service, not {url!r}")
    base, _, service = url.rstrip("/").rpartition("/")
    if "." not in service or base.endswith(":/"):
        raise ValueError(f"grpc(): the URL ends with the full service name "
                         f"(package.Service), not {url!r}")
    return base, service


def method_shape(service: str, method: str) -> tuple[Any, bool, bool]:
    """(response message class, client_streaming, server_streaming) of Service/Method."""
    require("google.protobuf")
    from google.protobuf import descriptor_pool, message_factory

    try:
        descriptor = descriptor_pool.Default().FindServiceByName(service)
    except KeyError:
        raise LookupError(f"gRPC service {service!r} is unknown: import its _pb2 module "
                          "(generated from the .proto) before calling it") from None
    found = descriptor.methods_by_name.get(method)
    if found is None:
        names = ", ".join(sorted(descriptor.methods_by_name))
        raise AttributeError(f"gRPC service {service} has no method {method} ({names})")
    return (message_factory.GetMessageClass(found.output_type), found.client_streaming,
            found.server_streaming)


def frame(messages: list[Any]) -> bytes:
    """Length-prefixed, uncompressed messages."""
    parts = []
    for message in messages:
        data = message.SerializeToString()
        parts.append(_PREFIX.pack(0, len(data)) + data)
    return b"".join(parts)


def unframe(body: bytes, encoding: str | None) -> list[bytes]:
    """The messages of a response body (compressed ones inflated)."""
    messages = []
    offset = 0
    view = memoryview(body)
    while offset < len(body):
        if len(body) - offset < 5:
            raise ProtocolError("gRPC: a message prefix cut short")
        compressed, length = _PREFIX.unpack_from(view, offset)
        offset += 5
        if len(body) - offset < length:
            raise ProtocolError("gRPC: a message cut short")
        data = bytes(view[offset:offset + length])
        offset += length
        if compressed:
            data = _inflate(data, encoding)
        messages.append(data)
    return messages


def _inflate(data: bytes, encoding: str | None) -> bytes:
    coding = (encoding or "identity").lower()
    try:
        if coding == "gzip":
            return gzip.decompress(data)
        if coding == "deflate":
            return zlib.decompress(data)
    except (OSError, zlib.error) as error:
        raise ProtocolError(f"gRPC: a {coding} message does not inflate: {error}") from None
    raise ProtocolError(f"gRPC: a compressed message with grpc-encoding {coding!r}")


def _timeout_field(seconds: float) -> str:
    return f"{max(1, int(seconds * 1000))}m"


def call(url: str, method: str, params: tuple[Any, ...], headers: Any = None,
         auth: Any = None) -> BackendCall:
    """The call of `grpc(url).<Method>(message or iterable of messages)`."""
    base, service = split_url(url)
    reply_class, client_streaming, server_streaming = method_shape(service, method)
    if len(params) != 1:
        raise TypeError(f"{method}() takes one message (or, client-streaming, an iterable "
                        "of messages)")
    messages = list(params[0]) if client_streaming else [params[0]]
    body = frame(messages)
    target = f"{base}/{service}/{method}"
    extra = [(str(name), str(value)) for name, value in
             (headers.items() if hasattr(headers, "items") else headers or [])]

    async def run(pools: Pools) -> Outcome:
        client = await pools.get(("grpc",), lambda: _client(pools), _close)
        fields = [("content-type", "application/grpc"), ("te", "trailers"),
                  ("grpc-accept-encoding", "gzip,deflate,identity"),
                  ("grpc-timeout", _timeout_field(pools.timeout)), *extra]
        kwargs: dict[str, Any] = {"headers": fields, "content": body}
        if auth is not None:
            kwargs["auth"] = auth
        answer = await client.request("POST", target, **kwargs)
        data = answer.content
        # The engine appends the trailers to the header fields; they begin with
        # grpc-status (a trailers-only answer: the status fields of its one block).
        pairs = [(name.decode("latin-1"), value.decode("latin-1"))
                 for name, value in answer.raw_headers]
        names = [name for name, _ in pairs]
        trailers = pairs[names.index("grpc-status"):] if "grpc-status" in names else []
        fields_by_name = dict(pairs)  # a trailer wins over a header of the same name
        outcome = Outcome(None, status_code=answer.status_code, reason=answer.reason,
                          version="2.0" if answer.http_version == "HTTP/2" else "1.1",
                          body=data, header_pairs=pairs, trailers=trailers)
        status = fields_by_name.get("grpc-status")
        if status is None:
            if answer.status_code != 200:
                raise QueryError(f"{target}: HTTP {answer.status_code} without a gRPC status",
                                 reason=answer.reason or "Not gRPC",
                                 status_code=answer.status_code, outcome=outcome)
            raise GrpcError(13, f"{target}: the answer has no grpc-status", outcome)
        code = int(status) if status.isdigit() else 2
        if code != 0:
            raise GrpcError(code, unquote(fields_by_name.get("grpc-message", "")), outcome)
        replies = []
        for raw in unframe(data, fields_by_name.get("grpc-encoding")):
            reply = reply_class()
            reply.ParseFromString(raw)
            replies.append(reply)
        if server_streaming:
            outcome.data = replies
        elif len(replies) == 1:
            outcome.data = replies[0]
        else:
            raise GrpcError(13, f"{target}: {len(replies)} messages for a unary answer",
                            outcome)
        return outcome

    return BackendCall("grpc", f"{base}/{service}", None, method, params, run)


async def _client(pools: Pools) -> Any:
    from qactuar.client.api import Client

    # gRPC needs HTTP/2: prior knowledge on http://, ALPN on https://.  The call's
    # deadline bounds the waits; redirects, cookies and retries have no place here.
    return Client(http2="prior-knowledge", verify=pools.verify, cert=pools.cert,
                  timeout=None, follow_redirects=False, cookies=False)


async def _close(client: Any) -> None:
    await client.aclose()
