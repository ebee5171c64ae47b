"""What the load engines' fast paths must keep exact: response framing when heads change,
bad chunk sizes, the histogram's sums past 64 bits, and a start-up without the server.

Against small raw-socket servers (tests/load_helpers.py); no test asserts on speed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import AbstractContextManager

from load_helpers import (
    RawConnection,
    RawServer,
    error_counts,
    hello,
    raw_websocket_server,
    report_counts,
    run_load,
)

from conftest import child_env
from qactuar.load.histogram import Histogram, bucket_of

OK_1 = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx"
OK_10 = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789"
MISSING = b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n\r\nnope!"


def test_alternating_heads_are_framed_and_counted_one_by_one() -> None:
    # The engine matches the last head it saw in place: each change of head (here one
    # that starts like the last one, and another status) must be read afresh.
    answers = [OK_1, OK_10, MISSING]

    def rotate(connection: RawConnection, number: int) -> None:
        connection.respond(answers[number % 3])

    with RawServer(rotate) as server:
        result = run_load("-n", "300", "-c", "1", "-m", "8", "--h1", server.url)
    counts = report_counts(result.stdout)
    assert counts["total"] == counts["done"] == 300, result.stdout
    assert counts["errored"] == 0, result.stdout
    assert "status codes: 200 2xx, 0 3xx, 100 4xx, 0 5xx" in result.stdout, result.stdout
    heads = 100 * (len(OK_1) - 1 + len(OK_10) - 10 + len(MISSING) - 5)
    assert f"({heads}) headers" in result.stdout, result.stdout
    assert f"({100 * (1 + 10 + 5)}) data" in result.stdout, result.stdout


def test_a_content_length_past_64_bits_is_a_protocol_error() -> None:
    # the same answer in both builds (compiled, a body length is a 64-bit C integer)
    def huge_body(connection: RawConnection, number: int) -> None:
        connection.respond(b"HTTP/1.1 200 OK\r\ncontent-length: " + b"9" * 30 + b"\r\n\r\nx")

    with RawServer(huge_body) as server:
        result = run_load("-n", "3", "-c", "1", "--h1", "--timeout", "5", server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert error_counts(result.stdout)["protocol"] == 3, result.stdout
    assert "Traceback" not in result.stderr


def test_a_chunk_size_past_64_bits_is_a_protocol_error() -> None:
    # the same answer in both builds (compiled, a chunk size is a 64-bit C integer)
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"

    def huge_chunk(connection: RawConnection, number: int) -> None:
        connection.respond(head + b"f" * 40 + b"\r\n")

    with RawServer(huge_chunk) as server:
        result = run_load("-n", "3", "-c", "1", "--h1", "--timeout", "5", server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert error_counts(result.stdout)["protocol"] == 3, result.stdout
    assert "Traceback" not in result.stderr


def websocket_server(answer: bytes) -> AbstractContextManager[str]:
    """A raw WebSocket server: accepts each upgrade, then sends `answer` for every frame."""

    def handle(sock: socket.socket) -> None:
        while sock.recv(4096):
            sock.sendall(answer)

    return raw_websocket_server(handle)


def test_a_websocket_frame_length_with_its_top_bit_set_is_a_protocol_error() -> None:
    # RFC 6455 5.2: a 64-bit length's most significant bit must be 0 (compiled, a length
    # is a C integer: this is the same answer in both builds)
    with websocket_server(bytes((0x81, 127, 0x80)) + bytes(7)) as url:
        result = run_load("-n", "2", "-c", "1", "--timeout", "5", url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert error_counts(result.stdout)["protocol"] >= 1, result.stdout
    assert "Traceback" not in result.stderr
    with websocket_server(bytes((0x81, 3)) + b"abc") as url:  # the same server, echoing
        fine = run_load("-n", "20", "-c", "2", "--timeout", "5", url)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert report_counts(fine.stdout)["succeeded"] == 20


def test_the_benchmarks_http1_runner_reads_the_tools_results() -> None:
    # benchmarks/qload.py: qactuar load in place of wrk, its JSON as a WrkResult
    from benchmarks.qload import run_qactuar_load

    cpu = str(min(os.sched_getaffinity(0)))
    with RawServer(hello) as server:
        result = run_qactuar_load(server.url, 1, cpu, 1, body_size=100, connections=4)
    assert result.requests > 0
    assert result.errors() == [], result
    assert set(result.latency_ms) == {"50", "75", "90", "99"}
    assert 0 < result.latency_ms["50"] <= result.latency_ms["99"]
    assert result.requests_per_second > 0 and result.cpu_seconds > 0
    assert server.requests >= result.requests


def test_the_sums_of_long_latencies_stay_exact() -> None:
    # a square of 5 s in nanoseconds is past 2**64: the sum of squares must not wrap
    values = [3, 5_000_000_000, 7_000_000_000, 2**40 + 17]
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    assert histogram.count == 4
    assert histogram.total == sum(values)
    assert histogram.total_squares == sum(value * value for value in values)
    assert (histogram.minimum, histogram.maximum) == (3, 2**40 + 17)
    assert histogram.counts[bucket_of(5_000_000_000)] == 1
    assert histogram.percentile(100) == 2**40 + 17


def test_sums_past_the_64_bit_counters_fold_in_exactly() -> None:
    # values just below 2**32 go to the 64-bit counters first: their squares fill them up
    # after one or two values, so the sums must fold into the exact ones over and over;
    # copying, subtracting (since) and merging must see the pending part too
    values = [2**32 - 1, 3, 2**32 - 2, 123_456_789, 2**31] * 40
    histogram = Histogram()
    for value in values[:100]:
        histogram.record(value)
    earlier = histogram.copy()
    for value in values[100:]:
        histogram.record(value)
    assert histogram.total == sum(values)
    assert histogram.total_squares == sum(value * value for value in values)
    newer = histogram.since(earlier)
    assert newer.total == sum(values[100:])
    assert newer.total_squares == sum(value * value for value in values[100:])
    merged = Histogram()
    merged.merge(earlier)
    merged.merge(newer)
    assert (merged.total, merged.total_squares) == (histogram.total, histogram.total_squares)
    assert Histogram.from_dict(histogram.to_dict()).total_squares == histogram.total_squares


def test_a_negative_latency_counts_as_zero() -> None:
    histogram = Histogram()
    histogram.record(-5)
    assert (histogram.count, histogram.minimum, histogram.counts[0]) == (1, 0, 1)


def test_the_load_command_starts_without_the_server_modules() -> None:
    # whole-run CPU is what users see: `python -m qactuar.load` must not import the server
    code = ("import sys, qactuar.load.cli, qactuar.load.runner; "
            "print(sorted(m for m in ('qactuar.server', 'qactuar.config') if m in sys.modules)); "
            "import qactuar; print(qactuar.Config.__name__, qactuar.run.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "Config run"], done.stdout
