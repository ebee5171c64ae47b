"""One QUIC_BIND socket in one serving process: datagrams in, connections, datagrams out.

Owns the receive queue (bounded: `QUIC_QUEUE_SIZE` datagrams; what arrives
while it is full is dropped and counted), version negotiation, address
validation (Retry, on unless `QUIC_RETRY` is off), the table of connection
IDs to `H3Session`s, and forwarding: a packet whose destination ID names
another worker (quic/cids.py) is passed to that worker (quic/forwarding.py)
instead of being answered as unknown.  Queued datagrams are handled in one
batch per loop iteration and each connection touched sends once after the
batch, so acknowledgements of many packets leave together.

Bad input costs one datagram: garbage, a short Initial, an invalid token and
a packet for no connection are counted (udp/counters.py), logged once, and
never reach a connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from aioquic.buffer import Buffer
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.packet import (
    QuicPacketType,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from aioquic.quic.retry import QuicRetryTokenHandler

from qactuar.protocols.http3 import H3Session
from qactuar.quic.cids import CID_LENGTH, OwnedQuicConnection, new_cid, owner_of, tag_of
from qactuar.udp.counters import DatagramCounters

if TYPE_CHECKING:
    from qactuar.quic.forwarding import Forwarder
    from qactuar.server_state import ServerState


class QuicEndpoint(asyncio.DatagramProtocol):
    """The QUIC side of one UDP socket (a prefork worker's lane, or the async model's one)."""

    def __init__(self, state: ServerState, configuration: QuicConfiguration,
                 retry: QuicRetryTokenHandler | None, slot: int,
                 counters: DatagramCounters, queue_size: int,
                 forwarder: Forwarder | None = None) -> None:
        self.state = state
        self.loop = state.loop
        self.configuration = configuration
        self.retry = retry
        self.slot = slot
        self.tag = tag_of(slot)
        self.counters = counters
        self.forwarder = forwarder
        self.queue: deque[tuple[bytes, Any, bool]] = deque()
        self.queue_size = queue_size
        self.transport: asyncio.DatagramTransport | None = None
        self.server: tuple[str, int] | None = None
        self.sessions: dict[bytes, H3Session] = {}
        self._drain_scheduled = False
        self.closing = False

    # -- the socket -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        name = transport.get_extra_info("sockname")
        self.server = (str(name[0]), int(name[1]))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.enqueue(data, addr, False)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors about a client: its connection times out on its own

    def enqueue(self, data: bytes, addr: Any, forwarded: bool) -> None:
        if len(self.queue) >= self.queue_size:
            self.counters.note("quic_queue_drops", "QUIC receive queue full (%d datagrams): "
                               "dropping", self.queue_size)
            return
        self.queue.append((data, addr, forwarded))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        queue = self.queue
        touched: set[H3Session] = set()
        now = self.loop.time()
        for _ in range(len(queue)):
            data, addr, forwarded = queue.popleft()
            session = self._handle(data, addr, forwarded, now)
            if session is not None:
                touched.add(session)
        for session in touched:
            session.transmit()

    def send_datagrams(self, datagrams: list[tuple[bytes, Any]]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data, addr in datagrams:
            transport.sendto(data, addr)

    # -- one datagram ----------------------------------------------------------------

    def _handle(self, data: bytes, addr: Any, forwarded: bool, now: float) -> H3Session | None:
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=CID_LENGTH)
        except ValueError:
            self.counters.note("quic_garbage", "a datagram from %s that is not QUIC",
                               _peer(addr))
            return None
        dcid = header.destination_cid
        session = self.sessions.get(dcid)
        if session is not None:
            session.datagram_received(data, addr, now)
            return session
        ptype = header.packet_type
        if (header.version is not None and ptype != QuicPacketType.VERSION_NEGOTIATION
                and header.version not in self.configuration.supported_versions):
            if len(data) >= SMALLEST_MAX_DATAGRAM_SIZE:  # never amplify a small datagram
                self._send(encode_quic_version_negotiation(
                    source_cid=dcid, destination_cid=header.source_cid,
                    supported_versions=self.configuration.supported_versions), addr)
            return None
        new = ptype == QuicPacketType.INITIAL and not header.token
        if not new:
            owner = owner_of(dcid)
            if owner is not None and owner != self.slot and not forwarded \
                    and self.forwarder is not None:
                if self.forwarder.send(owner, data, addr):
                    self.counters.count("quic_forwarded")
                else:
                    self.counters.count("quic_forward_failed")
                return None
        if ptype != QuicPacketType.INITIAL:
            self.counters.count("quic_unknown_connection")
            return None
        if len(data) < SMALLEST_MAX_DATAGRAM_SIZE:
            self.counters.note("quic_bad_initial", "a QUIC Initial from %s in a datagram "
                               "under %d bytes", _peer(addr), SMALLEST_MAX_DATAGRAM_SIZE)
            return None
        if self.closing or self.state.shutting_down:
            return None  # no new connections once shutting down
        original_dcid = dcid
        retry_scid = None
        if self.retry is not None:
            if not header.token:
                self._send_retry(header, addr, now)
                return None
            try:
                original_dcid = self.retry.validate_token(
                    address=addr, destination_cid=dcid, token=header.token, now=now)
            except ValueError as exc:
                # No reply: an INVALID_TOKEN close would answer a forged token with a
                # packet; a real client whose token expired retries without one.
                self.counters.note("quic_invalid_token", "a QUIC Initial from %s with an "
                                   "invalid token (%s)", _peer(addr), exc)
                return None
            retry_scid = dcid
        quic = OwnedQuicConnection(
            tag=self.tag, configuration=self.configuration,
            original_destination_connection_id=original_dcid,
            retry_source_connection_id=retry_scid)
        session = H3Session(self.state, self, quic, (str(addr[0]), int(addr[1])), self.server)
        self.register(dcid, session)
        self.register(quic.host_cid, session)
        session.datagram_received(data, addr, now)
        return session

    def _send_retry(self, header: Any, addr: Any, now: float) -> None:
        assert self.retry is not None
        source_cid = new_cid(self.tag)  # names this worker: the retried Initial comes back
        self.counters.count("quic_retries")
        self._send(encode_quic_retry(
            version=header.version, source_cid=source_cid, destination_cid=header.source_cid,
            original_destination_cid=header.destination_cid,
            retry_token=self.retry.create_token(
                address=addr, original_destination_connection_id=header.destination_cid,
                retry_source_connection_id=source_cid, now=now)), addr)

    def _send(self, data: bytes, addr: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    # -- the connection table (called by the sessions) -------------------------------

    def register(self, cid: bytes, session: H3Session) -> None:
        self.sessions[cid] = session
        session.cids.add(cid)

    def unregister(self, cid: bytes) -> None:
        session = self.sessions.pop(cid, None)
        if session is not None:
            session.cids.discard(cid)

    def forget(self, session: H3Session) -> None:
        for cid in session.cids:
            if self.sessions.get(cid) is session:
                del self.sessions[cid]
        session.cids.clear()

    def open_sessions(self) -> set[H3Session]:
        return {session for session in self.sessions.values() if not session.terminated}

    def close(self) -> None:
        """Stop: every connection is told (CONNECTION_CLOSE), the socket closes."""
        self.closing = True
        for session in self.open_sessions():
            session.abort()
        if self.transport is not None:
            self.transport.close()


def _peer(addr: Any) -> str:
    return f"{addr[0]}:{addr[1]}" if addr else "unknown peer"
