"""Binding the listening sockets, and the TLS context that wraps them."""

from __future__ import annotations

import os
import socket
import ssl

from qactuar.config import Config, ConfigError


def bind_tcp(host: str, port: int, backlog: int = 2048) -> list[socket.socket]:
    """Bind every address `host` resolves to (IPv4 and IPv6), all on one port.

    With port 0 the first socket gets an ephemeral port and the others reuse it.
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve HOST {host!r}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, str]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server-side TLS context, or None when no certificate is configured."""
    if not config.SSL_CERT_PATH and not config.SSL_KEY_PATH:
        return None
    if not config.SSL_CERT_PATH or not config.SSL_KEY_PATH:
        raise ConfigError("TLS needs both SSL_CERT_PATH and SSL_KEY_PATH")
    for key in ("SSL_CERT_PATH", "SSL_KEY_PATH"):
        path = getattr(config, key)
        if not os.path.isfile(path):
            raise ConfigError(f"TLS file not found: config key {key} = {path!r}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.SSL_CERT_PATH, config.SSL_KEY_PATH)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load the TLS certificate and key: {exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


def describe(sock: socket.socket, scheme: str) -> str:
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
