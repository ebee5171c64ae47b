"""Opening one connection for a pool: TCP (or a proxy tunnel), TLS, and the protocol choice.

The transport starts with a placeholder protocol that keeps whatever arrives
until we know which protocol it is for (ALPN decides between HTTP/1.1 and HTTP/2
only after the handshake), then hands the transport and those bytes to the real
one.  Every failure becomes the ClientError that says what failed: 704 for a
name, 713 for TLS, 714 for a refused or failed connection or proxy, 702 for the
connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

from qactuar.client.errors import (
    ClientError,
    ConnectError,
    ConnectTimeout,
    NameResolutionError,
    ProtocolSwitchError,
    TLSError,
)
from qactuar.client.http1 import HTTP1Connection, PipelinedHTTP1Connection
from qactuar.client.proxy import open_tunnel
from qactuar.client.tls import negotiated_http2


class _Opening(asyncio.Protocol):
    """Holds a new transport's events until the real protocol takes over."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buffered: list[bytes] = []
        self.lost = False
        self.lost_exc: Exception | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffered.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_exc = exc

    def hand_over(self, protocol: asyncio.Protocol) -> None:
        transport = self.transport
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        for data in self.buffered:
            protocol.data_received(data)
        if self.lost:
            protocol.connection_lost(self.lost_exc)


async def open_connection(pool: Any) -> Any:
    """A new, ready connection (HTTP1Connection or HTTP2Connection) for `pool`'s origin."""
    settings = pool.settings
    timeout = settings.timeout.connect
    try:
        async with asyncio.timeout(timeout):
            return await _open(pool, settings)
    except TimeoutError:
        raise ConnectTimeout(f"connecting to {pool.origin.host}:{pool.origin.port} took more "
                             f"than {timeout}s") from None


async def _open(pool: Any, settings: Any) -> Any:
    loop = pool.loop
    origin = pool.origin
    context = settings.tls_context() if origin.is_tls else None
    proxy = settings.proxy
    opening = _Opening()
    try:
        if proxy is not None and (proxy.kind == "socks5" or origin.is_tls):
            sock = await open_tunnel(proxy, origin.host, origin.port)
            await loop.create_connection(lambda: opening, sock=sock, ssl=context,
                                         server_hostname=origin.host if context else None)
        elif proxy is not None:  # plain http through an HTTP proxy: absolute-form requests
            await loop.create_connection(lambda: opening, proxy.host, proxy.port)
        else:
            await loop.create_connection(lambda: opening, origin.host, origin.port, ssl=context,
                                         server_hostname=origin.host if context else None)
    except ClientError:
        raise
    except socket.gaierror as error:
        raise NameResolutionError(f"cannot resolve {origin.host!r}: {error.strerror}") from None
    except ssl.SSLCertVerificationError as error:
        raise TLSError(f"certificate of {origin.host} not accepted: "
                       f"{error.verify_message or error}") from None
    except ssl.SSLError as error:
        raise TLSError(f"TLS handshake with {origin.host}:{origin.port} failed: "
                       f"{error.reason or error}") from None
    except ConnectionResetError as error:
        if context is not None:
            raise TLSError(f"TLS handshake with {origin.host}:{origin.port} failed: the "
                           "connection was reset") from error
        raise ConnectError(f"connection to {origin.host}:{origin.port} reset") from None
    except OSError as error:
        where = f"{proxy.host}:{proxy.port} (proxy)" if proxy else f"{origin.host}:{origin.port}"
        raise ConnectError(f"cannot connect to {where}: {error.strerror or error}") from None
    transport = opening.transport
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    use_h2 = (negotiated_http2(transport) if context is not None
              else settings.http2 == "prior-knowledge")
    if use_h2:
        # Imported with the first HTTP/2 connection (not per request): h2-free until then.
        from qactuar.client.http2 import HTTP2Connection

        connection: Any = HTTP2Connection(pool, settings.limits)
        opening.hand_over(connection)
        try:
            await connection.ready()
        except ClientError as error:
            connection.abort()
            if context is None:
                raise ProtocolSwitchError(f"{origin.host}:{origin.port} does not speak HTTP/2 "
                                          f"with prior knowledge ({error.message})") from None
            raise
        return connection
    kind = PipelinedHTTP1Connection if settings.limits.pipelining > 1 else HTTP1Connection
    connection = kind(pool, settings.limits.pipelining, settings.limits.max_header_size)
    connection.absolute_form = proxy is not None and not origin.is_tls
    opening.hand_over(connection)
    if connection.closed:
        raise ConnectError(f"{origin.host}:{origin.port} closed the connection at once")
    return connection
