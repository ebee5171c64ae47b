"""Binding the listening sockets, and the TLS context that wraps them."""

from __future__ import annotations

import errno
import os
import socket
import ssl

from qactuar.config import Config, ConfigError
from qactuar.logs import server_logger


def bind_tcp(host: str, port: int, backlog: int = 2048) -> list[socket.socket]:
    """Bind every address `host` resolves to (IPv4 and IPv6), all on one port.

    With port 0 the first socket gets an ephemeral port and the others reuse it.
    An IPv6 wildcard on its own ("::") also accepts IPv4, as other servers do.
    An address this machine cannot have (say ::1 with IPv6 disabled) is
    skipped when another one binds.
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve HOST {host!r}: {exc.strerror}") from None
    except (UnicodeError, ValueError):
        raise ConfigError(f"config key HOST = {host!r}: expected a valid host name or "
                          "address") from None
    addresses = list(dict.fromkeys((family, address[0]) for family, *_, address in infos))
    dual_stack = all(family == socket.AF_INET6 for family, _ in addresses)
    sockets: list[socket.socket] = []
    skipped: list[str] = []
    for family, ip in addresses:
        bound_port = sockets[0].getsockname()[1] if port == 0 and sockets else port
        try:
            sockets.append(_listen(family, ip, bound_port, backlog, dual_stack))
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and len(addresses) > 1:
                skipped.append(f"{_format(ip, family, bound_port)} ({exc.strerror})")
                continue
            for sock in sockets:
                sock.close()
            where = _format(ip, family, bound_port)
            raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    if not sockets:
        raise ConfigError(f"cannot listen on any address of HOST {host!r}: "
                          + ", ".join(skipped))
    for note in skipped:
        server_logger.warning("Not listening on %s", note)
    return sockets


def _listen(family: int, ip: str, port: int, backlog: int, dual_stack: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind((ip, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _format(ip: str, family: int, port: int) -> str:
    return f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"


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
        # A password callback, so an encrypted key fails here instead of
        # OpenSSL prompting on the terminal.
        context.load_cert_chain(config.SSL_CERT_PATH, config.SSL_KEY_PATH, password=_no_password)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load the TLS certificate and key (a key that does not match "
                          f"the certificate, or an encrypted key?): {exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


def _no_password() -> bytes:
    return b""


def describe(sock: socket.socket, scheme: str) -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://{_format(host, sock.family, port)}"
