"""Counts of what a serving process's datagram endpoints dropped or refused.

Every kind of bad or excess input is counted here and logged once per
process (its first occurrence, one line, no traceback): a flood must not turn
into a flood of log lines.  The admin plane shows the counts as
`qactuar_datagram_events_total` (admin/metrics.py).
"""

from __future__ import annotations

from typing import Any

from qactuar.logs import server_logger

# What is counted; the names are the metric's `event` label.
KINDS = (
    "quic_queue_drops",      # the QUIC receive queue was full
    "quic_garbage",          # not a QUIC packet, or an unknown version's short packet
    "quic_bad_initial",      # an Initial too small to be one
    "quic_invalid_token",    # an Initial whose Retry token is invalid or expired
    "quic_retries",          # Retry packets sent (address validation)
    "quic_unknown_connection",  # a packet for no connection we have
    "quic_forwarded",        # packets passed to the worker owning their connection
    "quic_forward_failed",   # ... whose owner was gone
    "malformed_requests",    # HTTP/3 request streams reset with H3_MESSAGE_ERROR
    "connection_errors",     # HTTP/3 connections that ended with an error code
    "udp_queue_drops",       # a UDP app's receive queue was full
    "udp_bad_send",          # a udp.send the app got wrong (logged, not sent)
)


class DatagramCounters:
    __slots__ = ("_logged", "counts")

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._logged: set[str] = set()

    def count(self, kind: str, amount: int = 1) -> None:
        self.counts[kind] += amount

    def note(self, kind: str, message: str, *args: Any) -> None:
        """Count one `kind` event; log `message` only the first time this process sees one."""
        self.counts[kind] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            server_logger.info(message + " (logged once; counted as %s)", *args, kind)


def counters_of(state: Any) -> DatagramCounters:
    """The process's counters, made on first use (a ServerState attribute)."""
    counters = getattr(state, "datagram_counters", None)
    if counters is None:
        counters = state.datagram_counters = DatagramCounters()
    return counters
