"""The PROXY protocol (HAProxy's, versions 1 and 2): the header a proxy sends first
on a connection to say who the client is (`PROXY_PROTOCOL = true`).

`parse_header` reads one header from a connection's first bytes (text v1 or
binary v2, with v2's TLVs); `ProxyProtocolReader` is the asyncio protocol a
listening socket starts each connection with: it closes connections from peers
not in `FORWARDED_ALLOW_IPS` at once, waits up to `HEADER_TIMEOUT` for the
header, closes the connection (only that one) on a malformed header, and
otherwise hands the transport to HTTP/1.1 with the client and server the
header names (and, from v2's SSL TLV, https and the scope's `tls` extension).
This module never builds a scope and never parses HTTP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qactuar.logs import escape, server_logger
from qactuar.proxy_headers import TrustedPeers

if TYPE_CHECKING:
    from qactuar.server_state import ServerState

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the specification's figure)
V2_MAX_BODY = 4096  # TLVs beyond this are not a proxy we know
# v2 TLV types (the specification's section 2.2).
PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_SSL = 0x01, 0x02, 0x20
PP2_SUBTYPE_SSL_VERSION, PP2_SUBTYPE_SSL_CN = 0x21, 0x22
PP2_CLIENT_SSL = 0x01
# ASGI's tls extension wants the version as its TLS code point.
_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class ProxyHeaderError(ValueError):
    """A PROXY header that is malformed (the connection is closed)."""


@dataclass
class ProxyHeader:
    """What one PROXY header says.  `client`/`server` None: the proxy speaks for
    itself (v1 UNKNOWN, v2 LOCAL, or an address family without ports)."""

    version: int
    length: int  # bytes of the header, to skip before the client's own bytes
    client: tuple[str, int] | None = None
    server: tuple[str, int] | None = None
    tls: dict[str, Any] | None = None  # from a v2 SSL TLV: the ASGI tls extension
    authority: str | None = None  # v2 PP2_TYPE_AUTHORITY (the client's SNI)


def parse_header(data: bytes) -> ProxyHeader | None:
    """The PROXY header at the start of `data`, None while it may still be arriving;
    `ProxyHeaderError` if `data` does not start with a valid one."""
    if data[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(data)] and len(data) < 16:
        return None  # the start of a v2 signature (or too short to tell)
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if not V1_PREFIX.startswith(data[:len(V1_PREFIX)]):
        raise ProxyHeaderError("no PROXY header")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line too long")
        return None
    return _parse_v1(data[:end], end + 2)


def _parse_v1(line: bytes, length: int) -> ProxyHeader:
    parts = line.split(b" ")
    if parts[0] != b"PROXY" or len(parts) < 2:
        raise ProxyHeaderError("malformed PROXY v1 line")
    if parts[1] == b"UNKNOWN":
        return ProxyHeader(1, length)
    if parts[1] not in (b"TCP4", b"TCP6") or len(parts) != 6:
        raise ProxyHeaderError("malformed PROXY v1 line")
    family = 4 if parts[1] == b"TCP4" else 6
    try:
        source = ipaddress.ip_address(parts[2].decode("ascii"))
        dest = ipaddress.ip_address(parts[3].decode("ascii"))
        ports = [_v1_port(part) for part in parts[4:6]]
    except (ValueError, UnicodeDecodeError):
        raise ProxyHeaderError("malformed address in PROXY v1 line") from None
    if source.version != family or dest.version != family:
        raise ProxyHeaderError("PROXY v1 address of the wrong family")
    return ProxyHeader(1, length, (str(source), ports[0]), (str(dest), ports[1]))


def _v1_port(text: bytes) -> int:
    # Decimal without leading zeros, 0 to 65535 (the specification's rule).
    if not text.isdigit() or (len(text) > 1 and text.startswith(b"0")) or int(text) > 65535:
        raise ValueError(text)
    return int(text)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    version_command, family, size = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise ProxyHeaderError("unsupported PROXY v2 version or command")
    if size > V2_MAX_BODY:
        raise ProxyHeaderError("PROXY v2 header too long")
    length = 16 + size
    if len(data) < length:
        return None
    body = data[16:length]
    header = ProxyHeader(2, length)
    if version_command & 0x0F == 0:  # LOCAL: the proxy's own connection (health checks)
        return header
    transport_family = family >> 4
    if transport_family == 1:
        address_size, unpack = 12, "!4s4sHH"
    elif transport_family == 2:
        address_size, unpack = 36, "!16s16sHH"
    else:  # UNSPEC or Unix addresses: no client address to report
        return _read_tlvs(header, body[216:] if transport_family == 3 else b"")
    if size < address_size:
        raise ProxyHeaderError("PROXY v2 address block too short")
    source, dest, source_port, dest_port = struct.unpack_from(unpack, body)
    header.client = (str(ipaddress.ip_address(source)), source_port)
    header.server = (str(ipaddress.ip_address(dest)), dest_port)
    return _read_tlvs(header, body[address_size:])


def _read_tlvs(header: ProxyHeader, tlvs: bytes) -> ProxyHeader:
    for kind, value in _tlvs(tlvs):
        if kind == PP2_TYPE_AUTHORITY:
            header.authority = value.decode("utf-8", "replace")
        elif kind == PP2_TYPE_SSL:
            header.tls = _tls_extension(value)
    return header


def _tlvs(data: bytes) -> list[tuple[int, bytes]]:
    found = []
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise ProxyHeaderError("truncated PROXY v2 TLV")
        kind, size = struct.unpack_from("!BH", data, offset)
        if offset + 3 + size > len(data):
            raise ProxyHeaderError("truncated PROXY v2 TLV")
        found.append((kind, data[offset + 3:offset + 3 + size]))
        offset += 3 + size
    return found


def _tls_extension(value: bytes) -> dict[str, Any] | None:
    """ASGI's `tls` extension from a PP2_TYPE_SSL value; None unless the client used TLS."""
    if len(value) < 5:
        raise ProxyHeaderError("truncated PROXY v2 SSL TLV")
    client_flags = value[0]
    if not client_flags & PP2_CLIENT_SSL:
        return None
    version = name = None
    for kind, sub in _tlvs(value[5:]):
        if kind == PP2_SUBTYPE_SSL_VERSION:
            version = _TLS_VERSIONS.get(sub.decode("ascii", "replace"))
        elif kind == PP2_SUBTYPE_SSL_CN:
            name = sub.decode("utf-8", "replace")
    return {"server_cert": None, "client_cert_chain": [], "client_cert_name": name,
            "client_cert_error": None, "tls_version": version, "cipher_suite": None}


class ProxyProtocolReader:
    """A connection's first protocol when PROXY_PROTOCOL is on: reads the PROXY
    header, then hands the transport to `make_protocol()` (an HTTP1Protocol)."""

    def __init__(self, state: ServerState, trusted: TrustedPeers, make_protocol: Any) -> None:
        self.state = state
        self.trusted = trusted
        self.make_protocol = make_protocol
        self.transport: asyncio.Transport | None = None
        self.received = b""
        self.peer: tuple[str, int] | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        if not self.trusted.trusts(self.peer[0] if self.peer else None):
            self._refuse("a peer not in FORWARDED_ALLOW_IPS may not send a PROXY header")
            return
        self.timer = self.state.loop.call_later(self.state.limits.header_timeout, self._refuse,
                                                "no PROXY header in time")

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.received += data
        try:
            header = parse_header(self.received)
        except ProxyHeaderError as exc:
            self._refuse(str(exc))
            return
        if header is not None:
            self._hand_over(header)

    def _hand_over(self, header: ProxyHeader) -> None:
        transport = self.transport
        assert transport is not None
        self._cancel_timer()
        rest = self.received[header.length:]
        self.received = b""
        protocol = self.make_protocol()
        sock = transport.get_extra_info("sockname")
        local = self.state.server_address(sock) if isinstance(sock, tuple) else None
        protocol.client = header.client if header.client is not None else self.peer
        protocol.server = header.server if header.server is not None else local
        if header.tls is not None:
            protocol._tls = header.tls
            protocol._scheme = "https"
        transport.set_protocol(protocol)
        protocol.begin(transport)
        if rest and not transport.is_closing() and transport.get_protocol() is protocol:
            protocol.data_received(rest)

    def _refuse(self, reason: str) -> None:
        self._cancel_timer()
        peer = f"{self.peer[0]}:{self.peer[1]}" if self.peer else "a Unix-socket peer"
        server_logger.info("PROXY protocol: %s (from %s): closing the connection",
                           escape(reason), peer)
        if self.transport is not None:
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.transport = None

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass



def connection_protocol_factory(state: ServerState) -> Any:
    """What a listening socket makes per connection: HTTP/1.1 (which hands over to
    HTTP/2 or WebSocket itself), behind a `ProxyProtocolReader` when PROXY_PROTOCOL
    is on."""
    from qactuar.protocols.http1 import HTTP1Protocol

    if not state.config.PROXY_PROTOCOL:
        return lambda: HTTP1Protocol(state)
    trusted = TrustedPeers(state.config.FORWARDED_ALLOW_IPS)
    return lambda: ProxyProtocolReader(state, trusted, lambda: HTTP1Protocol(state))
