"""Binding the admin plane's sockets, and who may bind where.

A TCP listener on an address that is not loopback needs `ADMIN_TOKEN`: anyone who
can reach it could otherwise reload the server.  The Unix socket is created mode
0600 (umask set around `bind`, so it is never briefly wider).  Problems are
`ConfigError`s: one line and exit status 2, before any worker starts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
import weakref

from qactuar.config import Config, ConfigError
from qactuar.sockets import bind_all, close_all


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback
                               for info in infos)


def bind_with_admin(config: Config) -> tuple[list[socket.socket], list[socket.socket]]:
    """The serving sockets and the admin plane's, both bound before a supervisor forks;
    when the admin's cannot be bound, the serving ones are closed again."""
    sockets = bind_all(config)
    try:
        return sockets, bind_admin(config)
    except BaseException:
        close_all(sockets)
        raise


def bind_admin(config: Config) -> list[socket.socket]:
    """The admin plane's listening sockets (none when ADMIN is off)."""
    if not config.ADMIN:
        return []
    if not config.ADMIN_HOST and not config.ADMIN_SOCKET:
        raise ConfigError("config key ADMIN = True: set ADMIN_HOST (with ADMIN_PORT) or "
                          "ADMIN_SOCKET for the admin plane to listen on")
    if config.ADMIN_HOST and not config.ADMIN_TOKEN and not is_loopback(config.ADMIN_HOST):
        raise ConfigError(f"config key ADMIN_HOST = {config.ADMIN_HOST!r} is not a loopback "
                          "address: set ADMIN_TOKEN so the admin plane is not open to anyone "
                          "who can reach it")
    if config.ADMIN_READ_TOKEN and config.ADMIN_READ_TOKEN == config.ADMIN_TOKEN:
        raise ConfigError("config key ADMIN_READ_TOKEN: must differ from ADMIN_TOKEN")
    sockets: list[socket.socket] = []
    try:
        if config.ADMIN_HOST:
            sockets.append(_bind_tcp(config.ADMIN_HOST, config.ADMIN_PORT))
        if config.ADMIN_SOCKET:
            sockets.append(_bind_unix(config.ADMIN_SOCKET))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_tcp(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"config key ADMIN_HOST = {host!r}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot bind the admin plane to {host}:{port}: "
                          f"{exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _bind_unix(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket of an earlier run
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"config key ADMIN_SOCKET = {path!r}: cannot bind: "
                          f"{exc.strerror or exc}") from None
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    _UNIX_PATHS[sock] = path
    sock.listen(64)
    sock.setblocking(False)
    return sock


# The path of each admin Unix socket, to remove it even after the server closed the socket.
_UNIX_PATHS: weakref.WeakKeyDictionary[socket.socket, str] = weakref.WeakKeyDictionary()


def describe_admin(sock: socket.socket) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{address}"
    host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
    return f"http://{host}:{address[1]}"


def close_admin(sockets: list[socket.socket]) -> None:
    """Close the admin sockets and remove the Unix socket's file (in the process that bound it)."""
    for sock in sockets:
        path = _UNIX_PATHS.pop(sock, None)
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
        sock.close()
