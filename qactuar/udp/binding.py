"""Binding the UDP sockets of QUIC_BIND and UDP_BINDS, before any process is forked.

A process model asks for `lanes` sockets per address: one in the async model,
one per worker in prefork.  Several lanes share the address with
SO_REUSEPORT, and the kernel spreads datagrams over them by their 4-tuple's
hash.  The supervisor binds them once and keeps them for its whole life, so
the set of sockets, and with it each client's lane, stays fixed while workers
come and go (a restarted worker reads the lane its slot had).  What a
worker's QUIC side shares with the others is made here too: the Retry token
key, so any worker accepts a token another issued, and the forwarding
namespace (quic/forwarding.py).  Problems are one ConfigError line.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from qactuar.config import Config, ConfigError, split_binds

# Kernel receive buffer asked for each UDP socket: a burst of datagrams waits
# there, not in the (bounded) queue in Python.
RECEIVE_BUFFER = 4 << 20


@dataclass
class DatagramBinds:
    """The datagram sockets of a server, by lane, and what every lane's reader shares."""

    quic_lanes: list[socket.socket] = field(default_factory=list)
    udp_lanes: list[list[socket.socket]] = field(default_factory=list)
    quic_configuration: Any = None  # aioquic's QuicConfiguration, when QUIC_BIND is set
    retry: Any = None  # aioquic's QuicRetryTokenHandler, None with QUIC_RETRY off
    namespace: str = ""  # names the forwarding inboxes of this server's workers
    quic_queue_size: int = 4096
    udp_queue_size: int = 1024

    @property
    def lanes(self) -> int:
        return max(len(self.quic_lanes), len(self.udp_lanes))

    def quic_port(self) -> int | None:
        return self.quic_lanes[0].getsockname()[1] if self.quic_lanes else None

    def close(self) -> None:
        for sock in self.quic_lanes:
            sock.close()
        for lane in self.udp_lanes:
            for sock in lane:
                sock.close()


def bind_datagrams(config: Config, lanes: int = 1) -> DatagramBinds | None:
    """The UDP sockets the config asks for (None: neither QUIC_BIND nor UDP_BINDS)."""
    if not config.QUIC_BIND and not config.UDP_BINDS:
        return None
    binds = DatagramBinds(namespace=os.urandom(6).hex(), quic_queue_size=config.QUIC_QUEUE_SIZE,
                          udp_queue_size=config.UDP_QUEUE_SIZE)
    try:
        if config.QUIC_BIND:
            binds.quic_configuration = quic_configuration(config)
            if config.QUIC_RETRY:
                from aioquic.quic.retry import QuicRetryTokenHandler

                binds.retry = QuicRetryTokenHandler()
            host, port = _split(config.QUIC_BIND)
            binds.quic_lanes = bind_udp(host, port, lanes, "QUIC_BIND")
        if config.UDP_BINDS:
            binds.udp_lanes = [[] for _ in range(lanes)]
            for part in split_binds(config.UDP_BINDS):
                host, port = _split(part)
                for lane, sock in enumerate(bind_udp(host, port, lanes, "UDP_BINDS")):
                    binds.udp_lanes[lane].append(sock)
    except BaseException:
        binds.close()
        raise
    return binds


def quic_configuration(config: Config) -> Any:
    """aioquic's server configuration: HTTP/3's ALPN, the TLS settings' certificate."""
    try:
        from aioquic.h3.connection import H3_ALPN
        from aioquic.quic.configuration import QuicConfiguration
    except ImportError:
        raise ConfigError("config key QUIC_BIND needs aioquic: pip install 'qactuar[h3]'"
                          ) from None
    if not config.SSL_CERT_PATH or not config.SSL_KEY_PATH:
        raise ConfigError("config key QUIC_BIND needs SSL_CERT_PATH and SSL_KEY_PATH "
                          "(QUIC is always encrypted)")
    from qactuar.quic.cids import CID_LENGTH

    configuration = QuicConfiguration(
        is_client=False, alpn_protocols=H3_ALPN, connection_id_length=CID_LENGTH,
        # A connection with nothing to say for this long is gone (a client that vanished).
        idle_timeout=max(config.KEEP_ALIVE_TIMEOUT, config.REQUEST_TIMEOUT,
                         config.HEADER_TIMEOUT, 1.0),
        max_data=16 << 20, max_stream_data=4 << 20)
    try:
        configuration.load_cert_chain(config.SSL_CERT_PATH, config.SSL_KEY_PATH,
                                      password=config.SSL_KEY_PASSWORD or None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"QUIC_BIND cannot load the TLS certificate and key: {exc}") from None
    return configuration


def bind_udp(host: str, port: int, lanes: int, key: str) -> list[socket.socket]:
    """`lanes` UDP sockets on one address (SO_REUSEPORT when more than one)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise ConfigError(f"config key {key}: cannot resolve {host!r}: {exc}") from None
    family, _, _, _, address = infos[0]
    sockets: list[socket.socket] = []
    try:
        for _ in range(lanes):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(sock)
            if lanes > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            # Port 0: the first lane gets a port, the others join it.
            bound = (address[0], sockets[0].getsockname()[1]) if len(sockets) > 1 else address
            sock.bind(bound[:2] if family == socket.AF_INET else (bound[0], bound[1], 0, 0))
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ConfigError(f"config key {key}: cannot bind UDP {host}:{port}: "
                          f"{exc.strerror or exc}") from None
    return sockets


def _split(part: str) -> tuple[str, int]:
    host, _, port = part.rpartition(":")
    return host.strip("[]"), int(port)
