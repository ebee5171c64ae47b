"""Binding the listening sockets, and the TLS context that wraps them.

Every process model gets its sockets from `bind_all` before it starts
serving (the prefork and postfork models before they fork), so binding
problems are one configuration error line in the process the operator
started.  This module never accepts connections.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import stat
import weakref

from qactuar.config import Config, ConfigError, octal_mode, split_binds
from qactuar.logs import server_logger

SD_LISTEN_FDS_START = 3  # systemd passes its sockets from this descriptor on
# Unix sockets this process bound, whose files it removes when it closes them.
_UNIX_PATHS: weakref.WeakKeyDictionary[socket.socket, str] = weakref.WeakKeyDictionary()


def bind_all(config: Config) -> list[socket.socket]:
    """Every socket the config asks for, bound and listening, non-blocking.

    BIND, UDS, FD and systemd's LISTEN_FDS each add sockets; HOST and PORT
    are bound only when none of them gives one.
    """
    sockets: list[socket.socket] = []
    try:
        for part in split_binds(config.BIND):
            if part.startswith("unix:"):
                sockets.append(bind_unix(part[len("unix:"):], config.UDS_MODE, config.BACKLOG))
            elif part.startswith("fd://"):
                sockets.append(socket_from_fd(int(part[len("fd://"):]), "BIND"))
            else:
                host, _, port = part.rpartition(":")
                sockets.extend(bind_tcp(host.strip("[]"), int(port), config.BACKLOG,
                                        config.REUSE_PORT))
        if config.UDS:
            sockets.append(bind_unix(config.UDS, config.UDS_MODE, config.BACKLOG))
        if config.FD >= 0:
            sockets.append(socket_from_fd(config.FD, "FD"))
        sockets.extend(systemd_sockets())
        if not sockets:
            sockets = bind_tcp(config.HOST, config.PORT, config.BACKLOG, config.REUSE_PORT)
    except BaseException:
        close_all(sockets)
        raise
    return sockets


def close_all(sockets: list[socket.socket]) -> None:
    """Close the sockets and remove the files of Unix sockets this process bound."""
    for sock in sockets:
        path = _UNIX_PATHS.pop(sock, None)
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)
        sock.close()


def bind_unix(path: str, mode: str = "", backlog: int = 2048) -> socket.socket:
    """Listen on a Unix socket at `path`, replacing a stale socket file there."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # left by a previous run: a socket file cannot be reused
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot listen on unix:{path}: {exc.strerror}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        permissions = octal_mode(mode) if mode else None
        if permissions is not None:
            os.chmod(path, permissions)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on unix:{path}: {exc.strerror or exc}") from None
    _UNIX_PATHS[sock] = path  # removed again at exit
    return sock


def socket_from_fd(fd: int, key: str) -> socket.socket:
    """Adopt an inherited, already listening socket (a process manager bound it)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"config key {key}: file descriptor {fd} is not a socket we can "
                          f"use: {exc.strerror or exc}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET,
                                                              socket.SO_ACCEPTCONN):
        sock.detach()
        raise ConfigError(f"config key {key}: file descriptor {fd} is not a listening "
                          "stream socket")
    sock.setblocking(False)
    return sock


def systemd_sockets() -> list[socket.socket]:
    """The sockets systemd passed by socket activation (LISTEN_FDS), if meant for us."""
    count = os.environ.get("LISTEN_FDS", "")
    if not count.isdigit() or os.environ.get("LISTEN_PID", "") != str(os.getpid()):
        return []
    # Not for the processes we start: forget them, as sd_listen_fds(1) does.
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return [socket_from_fd(fd, "LISTEN_FDS")
            for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count))]


def bind_tcp(host: str, port: int, backlog: int = 2048,
             reuse_port: bool = False) -> list[socket.socket]:
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
            sockets.append(_listen(family, ip, bound_port, backlog, dual_stack, reuse_port))
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


def _listen(family: int, ip: str, port: int, backlog: int, dual_stack: bool,
            reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # Lets another server (say a new release) bind the same port beside us.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    return f"{scheme}://{_format(host, sock.family, port)}"
