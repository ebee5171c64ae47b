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
from typing import Any

from qactuar.config import Config, ConfigError, octal_mode, split_binds
from qactuar.logs import server_logger
from qactuar.protocols import http1_enabled, http2_enabled

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


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
              "required": ssl.CERT_REQUIRED}
_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server-side TLS context, or None when no certificate is configured.

    Every problem with the files or settings is one ConfigError line, found
    here at start-up rather than at the first handshake.
    """
    if not config.SSL_CERT_PATH and not config.SSL_KEY_PATH:
        for key in ("SSL_CA_PATH", "SSL_KEY_PASSWORD", "SSL_CIPHERS"):
            if getattr(config, key):
                raise ConfigError(f"config key {key} needs SSL_CERT_PATH and SSL_KEY_PATH")
        return None
    if not config.SSL_CERT_PATH or not config.SSL_KEY_PATH:
        raise ConfigError("TLS needs both SSL_CERT_PATH and SSL_KEY_PATH")
    for key in ("SSL_CERT_PATH", "SSL_KEY_PATH", "SSL_CA_PATH"):
        path = getattr(config, key)
        if path and not os.path.isfile(path):
            raise ConfigError(f"TLS file not found: config key {key} = {path!r}")
    if config.SSL_CERT_REQS != "none" and not config.SSL_CA_PATH:
        raise ConfigError(f"config key SSL_CERT_REQS = {config.SSL_CERT_REQS!r} needs "
                          "SSL_CA_PATH (the CA certificates that sign client certificates)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _MIN_VERSIONS[config.SSL_MIN_VERSION]
    password = config.SSL_KEY_PASSWORD
    try:
        # Always a password callback, so an encrypted key without a password
        # fails here instead of OpenSSL prompting on the terminal.
        context.load_cert_chain(config.SSL_CERT_PATH, config.SSL_KEY_PATH,
                                password=lambda: password.encode())
    except (ssl.SSLError, OSError) as exc:
        what = ("a wrong SSL_KEY_PASSWORD, or a key that does not match the certificate?"
                if password else
                "a key that does not match the certificate, or an encrypted key?")
        raise ConfigError(f"cannot load the TLS certificate and key ({what}): {exc}") from None
    if config.SSL_CA_PATH:
        try:
            context.load_verify_locations(cafile=config.SSL_CA_PATH)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load the CA certificates of SSL_CA_PATH = "
                              f"{config.SSL_CA_PATH!r}: {exc}") from None
    context.verify_mode = _CERT_REQS[config.SSL_CERT_REQS]
    if config.SSL_CIPHERS:
        try:
            context.set_ciphers(config.SSL_CIPHERS)
        except ssl.SSLError:
            raise ConfigError(f"config key SSL_CIPHERS = {config.SSL_CIPHERS!r}: OpenSSL "
                              "knows none of these ciphers") from None
    if not http2_enabled(config.HTTP2):
        context.set_alpn_protocols(["http/1.1"])
    elif not http1_enabled(config.HTTP2):
        context.set_alpn_protocols(["h2"])
    else:
        context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def tls_scope_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI `tls` scope extension for one TLS connection (computed once per connection)."""
    peer = ssl_object.getpeercert(binary_form=True)
    cipher_name = (ssl_object.cipher() or ("", "", 0))[0]
    version_name = ssl_object.version() or ""
    return {
        "server_cert": None,
        # Python's ssl module exposes the client's own certificate, not the chain it sent.
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(peer)] if peer else [],
        "client_cert_name": _subject_name(ssl_object.getpeercert()) if peer else None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version_name),
        "cipher_suite": _cipher_id(ssl_object.context, cipher_name),
    }


_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_CIPHER_IDS: dict[str, int] = {}
_RDN_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
              "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
              "domainComponent": "DC", "userId": "UID"}


def _cipher_id(context: ssl.SSLContext, name: str) -> int | None:
    """The IANA number of a cipher suite (its low 16 bits in OpenSSL's id)."""
    if not _CIPHER_IDS:
        for cipher in context.get_ciphers():
            _CIPHER_IDS[cipher["name"]] = cipher["id"] & 0xFFFF
    return _CIPHER_IDS.get(name)


def _subject_name(cert: Any) -> str | None:
    """The subject as an RFC 4514 string (most specific part first)."""
    if not cert or "subject" not in cert:
        return None
    parts = [f"{_RDN_NAMES.get(name, name)}={value}"
             for rdn in reversed(cert["subject"]) for name, value in rdn]
    return ",".join(parts) or None


def describe(sock: socket.socket, scheme: str) -> str:
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    return f"{scheme}://{_format(host, sock.family, port)}"
