"""The Prometheus text exposition of the admin plane's numbers.

Names follow the Prometheus naming guide: a `qactuar_` prefix, base units
(seconds, bytes), `_total` on counters.  Input is the already-aggregated view
(plane.py); this module only formats it.
"""

from __future__ import annotations

from typing import Any

from qactuar.admin.stats import DURATION_BUCKETS


def _labels(**labels: Any) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def render(totals: dict[str, Any], processes: list[dict[str, Any]], restarts: int,
           started: float) -> str:
    """Prometheus text format 0.0.4 for the server-wide totals and each process."""
    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")

    family("qactuar_http_requests_total", "counter",
           "Responses finished, by protocol and status class.")
    for key, count in sorted(totals["requests"].items()):
        protocol, status_class = key.split(" ")
        lines.append(f"qactuar_http_requests_total"
                     f"{_labels(protocol=protocol, status_class=status_class)} {count}")

    family("qactuar_http_request_duration_seconds", "histogram",
           "Time from the app's start to the end of its response.")
    cumulative = 0
    for bound, count in zip((*DURATION_BUCKETS, float("inf")), totals["buckets"], strict=True):
        cumulative += count
        lines.append(f"qactuar_http_request_duration_seconds_bucket"
                     f"{_labels(le=_number(bound))} {cumulative}")
    lines.append(f"qactuar_http_request_duration_seconds_sum {_number(totals['duration_sum'])}")
    lines.append(f"qactuar_http_request_duration_seconds_count {cumulative}")

    family("qactuar_http_request_body_bytes_total", "counter", "Request body bytes received.")
    lines.append(f"qactuar_http_request_body_bytes_total {totals['bytes_in']}")
    family("qactuar_http_response_body_bytes_total", "counter", "Response body bytes sent.")
    lines.append(f"qactuar_http_response_body_bytes_total {totals['bytes_out']}")

    datagrams: dict[str, int] = {}
    for process in processes:
        for event, count in (process.get("datagrams") or {}).items():
            datagrams[event] = datagrams.get(event, 0) + count
    if datagrams:
        family("qactuar_datagram_events_total", "counter",
               "QUIC and UDP datagrams dropped, refused or forwarded, by event "
               "(docs/http3-udp.md).")
        for event, count in sorted(datagrams.items()):
            lines.append(f"qactuar_datagram_events_total{_labels(event=event)} {count}")

    serving = [p for p in processes if p.get("connections") is not None]
    family("qactuar_connections_active", "gauge", "Open client connections.")
    lines.append(f"qactuar_connections_active {sum(p['connections'] for p in serving)}")
    family("qactuar_requests_in_flight", "gauge", "Requests whose response is not complete.")
    lines.append(f"qactuar_requests_in_flight {sum(p['in_flight'] for p in serving)}")
    family("qactuar_worker_restarts_total", "counter",
           "Workers replaced after they exited unexpectedly or were killed.")
    lines.append(f"qactuar_worker_restarts_total {restarts}")
    family("qactuar_start_time_seconds", "gauge", "When the server started (Unix time).")
    lines.append(f"qactuar_start_time_seconds {_number(started)}")

    measured = [p for p in processes if p.get("rss_bytes") is not None]
    if measured:
        family("qactuar_process_resident_memory_bytes", "gauge",
               "Resident memory of each process (GATHER_PROC_STATS).")
        for process in measured:
            lines.append(f"qactuar_process_resident_memory_bytes"
                         f"{_labels(pid=process['pid'], role=process['role'])} "
                         f"{process['rss_bytes']}")
        family("qactuar_process_cpu_seconds_total", "counter",
               "CPU time of each process (GATHER_PROC_STATS).")
        for process in measured:
            lines.append(f"qactuar_process_cpu_seconds_total"
                         f"{_labels(pid=process['pid'], role=process['role'])} "
                         f"{_number(process['cpu_seconds'])}")
    return "\n".join(lines) + "\n"
