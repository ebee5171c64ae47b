"""Reaching an origin through a proxy: HTTP CONNECT tunnels and SOCKS5 (RFC 1928/1929).

`Proxy` parses a proxy URL.  `open_tunnel` connects a non-blocking socket to
the proxy and makes it a byte pipe to the origin (CONNECT for https through an
HTTP proxy, the SOCKS5 handshake for socks5); the connector then runs TLS and
HTTP over that socket.  Plain http through an HTTP proxy needs no tunnel: the
connection goes to the proxy and requests use the absolute form.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import struct
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from qactuar.client.errors import ProxyError

_REPLY_LIMIT = 16384  # bytes of a CONNECT answer's head we read at most


class Proxy(NamedTuple):
    kind: str  # "http" or "socks5"
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Proxy:
        parts = urlsplit(url)
        kind = parts.scheme.lower()
        if kind in ("socks5", "socks5h"):
            kind, default = "socks5", 1080
        elif kind == "http":
            default = 8080
        else:
            raise ValueError(f"proxy {url!r}: the scheme must be http or socks5")
        if not parts.hostname:
            raise ValueError(f"proxy {url!r}: no host")
        return cls(kind, parts.hostname, parts.port or default,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)

    def authorization(self) -> bytes | None:
        """The Proxy-Authorization value for an HTTP proxy with credentials."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return b"Basic " + base64.b64encode(pair)


async def open_tunnel(proxy: Proxy, host: str, port: int) -> socket.socket:
    """A connected socket whose bytes reach host:port through `proxy`."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ProxyError(f"proxy {proxy.host}:{proxy.port}: cannot resolve: {error}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        try:
            await loop.sock_connect(sock, address)
        except OSError as error:
            raise ProxyError(f"proxy {proxy.host}:{proxy.port}: cannot connect: "
                             f"{error.strerror or error}") from None
        if proxy.kind == "socks5":
            await _socks5(loop, sock, proxy, host, port)
        else:
            await _connect(loop, sock, proxy, host, port)
    except BaseException:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


async def _recv_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ProxyError("the proxy closed the connection during the handshake")
        data += chunk
    return data


async def _connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: Proxy,
                   host: str, port: int) -> None:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n".encode()
    credentials = proxy.authorization()
    if credentials:
        head += b"Proxy-Authorization: " + credentials + b"\r\n"
    await loop.sock_sendall(sock, head + b"\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        # One byte at a time past the head would be slow; the proxy sends nothing after
        # its head until we speak (TLS), so reading what is there is safe.
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ProxyError("the proxy closed the connection instead of answering CONNECT")
        answer += chunk
        if len(answer) > _REPLY_LIMIT:
            raise ProxyError("the proxy's answer to CONNECT is too large")
    status_line = answer.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or parts[1] != b"200":
        raise ProxyError(f"the proxy refused the tunnel to {authority}: "
                         f"{status_line.decode('latin-1')!r}")


_SOCKS_REPLIES = {1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable",
                  4: "host unreachable", 5: "connection refused", 6: "TTL expired",
                  7: "command not supported", 8: "address type not supported"}


async def _socks5(loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: Proxy,
                  host: str, port: int) -> None:
    methods = b"\x00\x02" if proxy.username is not None else b"\x00"
    await loop.sock_sendall(sock, b"\x05" + bytes((len(methods),)) + methods)
    version, method = await _recv_exact(loop, sock, 2)
    if version != 5:
        raise ProxyError("the proxy does not speak SOCKS5")
    if method == 2:
        user = (proxy.username or "").encode()
        password = (proxy.password or "").encode()
        await loop.sock_sendall(sock, b"\x01" + bytes((len(user),)) + user
                                + bytes((len(password),)) + password)
        _, status = await _recv_exact(loop, sock, 2)
        if status != 0:
            raise ProxyError("the SOCKS5 proxy refused the user name and password")
    elif method != 0:
        raise ProxyError("the SOCKS5 proxy accepts none of our authentication methods")
    try:
        address = ipaddress.ip_address(host)
        target = (b"\x01" if address.version == 4 else b"\x04") + address.packed
    except ValueError:
        name = host.encode("idna")
        target = b"\x03" + bytes((len(name),)) + name  # the proxy resolves the name
    await loop.sock_sendall(sock, b"\x05\x01\x00" + target + struct.pack(">H", port))
    version, reply, _, kind = await _recv_exact(loop, sock, 4)
    if version != 5 or reply != 0:
        reason = _SOCKS_REPLIES.get(reply, f"reply {reply}")
        raise ProxyError(f"the SOCKS5 proxy could not reach {host}:{port}: {reason}")
    skip = {1: 4, 4: 16}.get(kind)
    if skip is None:
        skip = (await _recv_exact(loop, sock, 1))[0]
    await _recv_exact(loop, sock, skip + 2)  # the bound address and port: not needed
