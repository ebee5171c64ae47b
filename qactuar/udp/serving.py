"""Starting and stopping a serving process's datagram endpoints (QUIC_BIND, UDP_BINDS).

The process models call three things: `start_datagrams` once the apps'
lifespan startup is done (a UDP app that does not take the `udp` scope makes
it return a start-up failure), `DatagramServing.stop_receiving` when the
graceful shutdown begins (HTTP/3 connections get their GOAWAY through
`state.connections`, UDP apps a `udp.disconnect`), and `close` at the end.
A process reads the lane of its slot (udp/binding.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from qactuar.asgi.router import Mount
from qactuar.server_state import ServerState
from qactuar.udp.binding import DatagramBinds
from qactuar.udp.counters import counters_of

# How long a UDP app may take before its first receive() before start-up goes on
# without knowing (it neither failed nor took a datagram yet).
ACCEPT_WAIT = 5.0


class DatagramServing:
    """The datagram endpoints of one serving process."""

    def __init__(self) -> None:
        self.quic: Any = None
        self.forwarder: Any = None
        self.udp: list[Any] = []

    def stop_receiving(self) -> None:
        if self.quic is not None:
            self.quic.closing = True
        for endpoint in self.udp:
            endpoint.stop()

    def close(self) -> None:
        if self.quic is not None:
            self.quic.close()
        if self.forwarder is not None:
            self.forwarder.close()
        for endpoint in self.udp:
            endpoint.close()


async def start_datagrams(state: ServerState, binds: DatagramBinds, slot: int,
                          mounts: list[Mount], logger: logging.Logger
                          ) -> tuple[DatagramServing, str | None]:
    """Serve the lane of `slot`; (the endpoints, None) or (what is started, why start-up fails)."""
    loop = state.loop
    serving = DatagramServing()
    counters = counters_of(state)
    lane = slot % binds.lanes
    if binds.quic_lanes:
        from qactuar.quic.endpoint import QuicEndpoint

        if len(binds.quic_lanes) > 1:
            from qactuar.quic.forwarding import Forwarder

            serving.forwarder = Forwarder(binds.namespace, slot)
        _, endpoint = await loop.create_datagram_endpoint(
            lambda: QuicEndpoint(state, binds.quic_configuration, binds.retry, slot, counters,
                                 binds.quic_queue_size, serving.forwarder),
            sock=binds.quic_lanes[lane])
        serving.quic = endpoint
        if serving.forwarder is not None:
            serving.forwarder.start(loop, lambda data, addr: endpoint.enqueue(data, addr, True))
        port = binds.quic_port()
        if state.scheme == "https":
            # Browsers learn of HTTP/3 from this field on TLS responses (RFC 7838).
            state.alt_svc_line = b'alt-svc: h3=":%d"; ma=86400\r\n' % port
            state.date_and_server_lines = (state.date_line + state.server_header
                                           + state.alt_svc_line)
        logger.info("HTTP/3 (QUIC) on udp://%s:%d (lane %d)",
                    endpoint.server[0], port, lane)
    if binds.udp_lanes:
        root = next((mount for mount in mounts if mount.prefix == ""), None)
        if root is None:
            return serving, "UDP_BINDS needs an app mounted at the root of APPS"
        from qactuar.udp.app_endpoint import UDPAppEndpoint

        for sock in binds.udp_lanes[lane]:
            _, app_endpoint = await loop.create_datagram_endpoint(
                lambda: UDPAppEndpoint(state, root, counters, binds.udp_queue_size), sock=sock)
            serving.udp.append(app_endpoint)
            try:
                problem = await asyncio.wait_for(asyncio.shield(app_endpoint.accepted),
                                                 ACCEPT_WAIT)
            except TimeoutError:
                problem = None
            if problem is not None:
                return serving, (f"the app {root.app!r} does not handle the 'udp' scope of "
                                 f"UDP_BINDS ({type(problem).__name__}: {problem})")
            logger.info("UDP app on udp://%s:%d (lane %d)", *app_endpoint.server,
                        lane)
    return serving, None
