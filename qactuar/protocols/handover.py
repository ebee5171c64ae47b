"""Hand-overs: where a connection that HTTP/1.1 opened continues in another protocol.

Every connection starts with an `HTTP1Protocol` (models/aio.py makes it).  It
gives its transport to another protocol in four cases, each decided here:

- ALPN h2: TLS negotiated `h2` (`alpn_chose_h2`): HTTP/2 from the first byte.
- Prior knowledge: the connection's very first bytes are the HTTP/2 preface
  (`may_be_preface` while they arrive, then `opens_with_preface`; RFC 9113
  3.4: anywhere else they are not HTTP/2).
- h2c upgrade: a request with `Upgrade: h2c` we accept (`h2c_upgrade`): the
  101 (`H2C_SWITCHING`), then HTTP/2 with that request as stream 1.
- WebSocket upgrade: a valid handshake (protocols/websocket.py checks it):
  the transport goes to a `WebSocketProtocol`.

And with `HTTP2 = "only"` every connection goes to HTTP/2 at once.

`HTTP1Protocol` gives the transport up (it stops parsing, its timers and its
place in `state.connections`) and calls `to_http2` or `to_websocket`, which
make the next protocol with the server's `ProtocolFactory` and start it.  The
factory is the one documented place a process model changes which protocol
objects serve a connection (postfork marks a child whose client speaks
HTTP/2); `ServerState.protocols` holds it (None: `DEFAULT_PROTOCOLS`).  What a
model watches (requests in flight, a connection closing) is
`ServerState.observer` instead (server_state.py).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from qactuar.protocols import http2_enabled

if TYPE_CHECKING:
    from qactuar.protocols.http2 import H2Protocol
    from qactuar.protocols.websocket import WebSocketProtocol
    from qactuar.server_state import ServerState

# RFC 9113 3.4; the same bytes as h2_connection.PREFACE (a test checks), not imported
# from there so that HTTP/2 is imported only when a connection speaks it.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2C_SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\n"
                 b"upgrade: h2c\r\n\r\n")
# Request fields that are HTTP/1.1's own: never carried into an HTTP/2 stream.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te",
                         b"proxy-connection", b"upgrade", b"http2-settings"})


class ProtocolFactory:
    """Makes the protocol a connection is handed over to.

    Subclass it and set an instance as `ServerState.protocols` to make other
    protocol objects (each method must return one of the class named, or a
    subclass) or to note a hand-over; the base class is what the async model
    uses.
    """

    def http2(self, state: ServerState, transport: asyncio.Transport,
              client: tuple[str, int] | None, server: tuple[str, int] | None,
              tls: dict[str, Any] | None) -> H2Protocol:
        """The HTTP/2 protocol for a connection (`tls`: the ASGI tls extension, if any)."""
        # Imported at the first hand-over, not at start-up (see docs/architecture.md).
        from qactuar.protocols.http2 import H2Protocol

        return H2Protocol(state, transport, client, server, tls)

    def websocket(self, state: ServerState, scope: dict[str, Any], app: Any
                  ) -> WebSocketProtocol:
        """The WebSocket protocol after an accepted handshake (`scope`: its HTTP scope)."""
        from qactuar.protocols.websocket import WebSocketProtocol

        return WebSocketProtocol(state, scope, app)


DEFAULT_PROTOCOLS = ProtocolFactory()


def factory_of(state: ServerState) -> ProtocolFactory:
    return state.protocols if state.protocols is not None else DEFAULT_PROTOCOLS


def alpn_chose_h2(ssl_object: ssl.SSLObject | ssl.SSLSocket, setting: str) -> bool:
    """TLS negotiated `h2` and HTTP2 allows it."""
    return ssl_object.selected_alpn_protocol() == "h2" and http2_enabled(setting)


def may_be_preface(opening: bytes) -> bool:
    """Whether a connection's first bytes so far are a part of the HTTP/2 preface
    (HTTP1Protocol holds them back from its parser until they cannot be)."""
    return PREFACE.startswith(opening)


def opens_with_preface(opening: bytes) -> bool:
    """h2c with prior knowledge: the connection's first bytes are the HTTP/2 preface."""
    return opening.startswith(PREFACE)


def h2c_upgrade(method: str, target: bytes, headers: list[tuple[bytes, bytes]],
                has_body: bool) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """An `Upgrade: h2c` request we take (RFC 7540 3.2: no body, one HTTP2-Settings):
    (its HTTP2-Settings, the request as HTTP/2 header fields); None to serve it as
    HTTP/1.1.  The caller checks the rest (cleartext, HTTP2 enabled, not shutting down)."""
    upgrade = b""
    settings = []
    fields = [(b":method", method.encode()), (b":path", target), (b":scheme", b"http")]
    for name, value in headers:
        if name == b"upgrade":
            upgrade = value.strip().lower()
        elif name == b"http2-settings":
            settings.append(value.strip())
        elif name == b"host":
            fields.insert(3, (b":authority", value))
        elif name not in _HOP_BY_HOP:
            fields.append((name, value))
    if upgrade != b"h2c" or len(settings) != 1 or has_body:
        return None
    return settings[0], fields


def to_http2(state: ServerState, transport: asyncio.Transport,
             client: tuple[str, int] | None, server: tuple[str, int] | None,
             tls: dict[str, Any] | None, data: bytes,
             upgrade: tuple[bytes, list[tuple[bytes, bytes]]] | None = None) -> None:
    """Serve the connection as HTTP/2 from here; `data`: what the client sent so far
    that HTTP/2 must read (after an h2c upgrade: what followed the request)."""
    http2 = factory_of(state).http2(state, transport, client, server, tls)
    transport.set_protocol(http2)
    http2.take_over(data, upgrade)


def to_websocket(state: ServerState, transport: asyncio.Transport, scope: dict[str, Any],
                 app: Any, rest: bytes, reading_paused: bool) -> None:
    """Serve the connection as a WebSocket; `rest`: the bytes after the handshake."""
    websocket = factory_of(state).websocket(state, scope, app)
    transport.set_protocol(websocket)
    websocket.take_over(transport, rest, reading_paused)
