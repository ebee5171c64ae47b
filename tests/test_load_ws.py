"""`qactuar load` WebSocket with several messages in flight per connection (`-m`), and the
frames it sends: each under its own mask.  Also the benchmarks' wsload client with the
same option (its DEPTH argument), against the real Qactuar server.

No test asserts on speed: the delayed-echo server's delay is a known lower bound of
every round trip, and its upper bound here is far from what the tool costs.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from load_helpers import raw_websocket_server, read_json, report_counts, run_load

from qactuar.load.histogram import Histogram

DELAY_S = 0.05


@dataclass
class Seen:
    """What the raw server saw: every frame's mask and payload, and the most frames it
    held unanswered at once."""

    masks: list[bytes] = field(default_factory=list)
    payloads: set[bytes] = field(default_factory=set)
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def delayed_echo_server(seen: Seen) -> AbstractContextManager[str]:
    """A raw WebSocket server that unmasks each client frame and echoes it as a text
    frame DELAY_S after it arrived (in order, as an echo must be)."""

    def handle(sock: socket.socket) -> None:
        due: list[tuple[float, bytes]] = []
        condition = threading.Condition()
        threading.Thread(target=send_when_due, args=(sock, due, condition),
                         daemon=True).start()
        try:
            while True:
                first, second = read_exactly(sock, 2)
                assert second & 0x80 and second & 0x7F < 127, (first, second)
                length = second & 0x7F
                if length == 126:
                    length = int.from_bytes(read_exactly(sock, 2), "big")
                mask = read_exactly(sock, 4)
                payload = bytes(byte ^ mask[index & 3] for index, byte in
                                enumerate(read_exactly(sock, length)))
                with condition:
                    due.append((time.monotonic() + DELAY_S, payload))
                    condition.notify()
                    with seen.lock:
                        seen.masks.append(mask)
                        seen.payloads.add(payload)
                        seen.most_in_flight = max(seen.most_in_flight, len(due))
        except (EOFError, OSError):
            return

    return raw_websocket_server(handle)


def send_when_due(sock: socket.socket, due: list[tuple[float, bytes]],
                  condition: threading.Condition) -> None:
    """Send each echo of `due` (oldest first) once its time has come."""
    while True:
        with condition:
            while not due:
                condition.wait()
            when, payload = due[0]
        wait = when - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with condition:
            due.pop(0)
        try:
            size = len(payload)
            head = bytes((0x81, size)) if size < 126 else bytes((0x81, 126)) + \
                size.to_bytes(2, "big")
            sock.sendall(head + payload)
        except OSError:
            return


@pytest.mark.parametrize("size", [16, 300])  # a 7-bit and a 16-bit frame length
def test_m_keeps_that_many_messages_in_flight_and_times_each_round_trip(
        tmp_path: Path, size: int) -> None:
    seen = Seen()
    with delayed_echo_server(seen) as url:
        result = run_load("-n", "80", "-c", "2", "-m", "4", "--ws-message-size", str(size),
                          "--json", str(tmp_path / "r.json"), url)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = report_counts(result.stdout)
    assert counts["succeeded"] == counts["started"] == 80, result.stdout
    assert len(seen.masks) == 80
    assert seen.most_in_flight == 4  # one connection's -m, never more
    assert seen.payloads == {b"x" * size}  # every frame unmasks to the message
    # RFC 6455 5.3: a fresh mask per frame (the chance of two random masks colliding
    # among 80 is about one in a million; one mask per connection would give 2)
    assert len(set(seen.masks)) >= 79
    latency = Histogram.from_dict(read_json(tmp_path / "r.json")["results"]["latency"])
    assert latency.count == 80
    # each message's own round trip: at least the server's delay, and not the several
    # delays a message would show if timed from its connection's first one in flight
    assert DELAY_S * 1e9 <= latency.percentile(50) < 2 * DELAY_S * 1e9


def test_m_against_the_server_adds_up(start_server, tmp_path: Path) -> None:
    server = start_server("apps.ws_app:app")
    url = server.url.replace("http://", "ws://")
    result = run_load("-n", "2000", "-c", "3", "-m", "16", "--ws-message-size", "200",
                      "--json", str(tmp_path / "r.json"), f"{url}/echo")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = report_counts(result.stdout)
    assert counts["started"] == counts["succeeded"] == 2000, result.stdout
    results = read_json(tmp_path / "r.json")["results"]
    assert results["bytes_data"] == 2000 * 200
    assert Histogram.from_dict(results["latency"]).count == 2000


@pytest.mark.parametrize("depth", [1, 8])
def test_wsload_keeps_depth_messages_in_flight(start_server, depth: int) -> None:
    # benchmarks/wsload.c's DEPTH argument: the like-for-like peer of `-m` (needs gcc)
    from benchmarks import wsload

    try:
        wsload.build()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    server = start_server("apps.ws_app:app")
    port = int(server.url.rsplit(":", 1)[1])
    cpu = str(min(os.sched_getaffinity(0)))
    result = wsload.run_wsload(port, 2, 64, 1, cpu, depth)
    assert result.messages > 0 and result.messages_per_second > 0
    assert result.cpu_seconds >= result.system_seconds > 0
