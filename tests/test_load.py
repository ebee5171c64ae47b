"""`qactuar load` end to end: against the real Qactuar server and small raw-socket servers.

Each run is short (a fraction of a second to two seconds); no test asserts on speed.
"""

from __future__ import annotations

import csv
import signal
import socket
import time
from pathlib import Path

import pytest
from load_helpers import (
    HELLO,
    RawServer,
    StallOnce,
    error_counts,
    hello,
    read_json,
    report_counts,
    run_load,
    start_load,
)

from conftest import ServerProcess, wait_until, write_tls_files
from qactuar.load.histogram import Histogram


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_counts_add_up(output: str) -> dict[str, int]:
    counts = report_counts(output)
    assert counts["started"] == counts["succeeded"] + counts["failed"] + counts["errored"], output
    assert counts["done"] == counts["started"], output
    return counts


# HTTP/1.1 and HTTP/2 against the real server

@pytest.mark.parametrize("extra", [["--h1"], ["--h1", "-m", "8"], [], ["-m", "10"]],
                         ids=["h1", "h1-pipelined", "h2c", "h2c-10-streams"])
def test_requests_against_the_server_add_up(basic_server: ServerProcess, extra: list[str],
                                            tmp_path: Path) -> None:
    result = run_load("-n", "400", "-c", "4", *extra, "--json", str(tmp_path / "r.json"),
                      f"{basic_server.url}/hello")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = assert_counts_add_up(result.stdout)
    assert counts["succeeded"] == counts["total"] == 400
    assert "status codes: 400 2xx, 0 3xx, 0 4xx, 0 5xx" in result.stdout
    document = read_json(tmp_path / "r.json")
    assert document["schema"] == "qactuar-load/1"
    assert document["run"]["protocol"] == ("h1" if "--h1" in extra else "h2")
    histogram = Histogram.from_dict(document["results"]["latency"])
    assert histogram.count == 400
    assert document["results"]["bytes_data"] == 400 * len(b"Hello, world!")
    assert "requests per CPU-second" in result.stdout


@pytest.mark.parametrize("extra", [["--h1"], []], ids=["h1", "h2"])
def test_chunked_and_streamed_bodies_are_framed(basic_server: ServerProcess,
                                                extra: list[str], tmp_path: Path) -> None:
    result = run_load("-n", "50", "-c", "2", *extra, "--json", str(tmp_path / "r.json"),
                      f"{basic_server.url}/stream?n=3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_counts_add_up(result.stdout)
    assert read_json(tmp_path / "r.json")["results"]["bytes_data"] == 50 * len(
        b"chunk-0\nchunk-1\nchunk-2\n")


# 20 bodies of 40,000 bytes on HTTP/2 are more than the connection's first window: they
# pass only if the server gives the window back for every body read to its end.
@pytest.mark.parametrize("extra", [["--h1"], []], ids=["h1", "h2"])
def test_a_posted_body_is_sent(basic_server: ServerProcess, extra: list[str],
                               tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"x" * 40_000)
    result = run_load("-n", "20", "-c", "2", *extra, "-d", str(body), "--json",
                      str(tmp_path / "r.json"), f"{basic_server.url}/echo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_json(tmp_path / "r.json")["results"]["bytes_data"] == 20 * 40_000


def test_https_picks_http2_by_alpn_and_http1_when_asked(start_server, tmp_path: Path) -> None:
    files = write_tls_files(tmp_path)
    server = start_server("apps.basic:app", "--ssl-cert-path", str(files["cert"]),
                          "--ssl-key-path", str(files["key"]))
    for extra, protocol in (([], "h2"), (["--h1"], "h1")):
        out = tmp_path / f"{protocol}.json"
        result = run_load("-n", "100", "-c", "2", "-m", "4", *extra, "--json", str(out),
                          f"{server.url}/hello")
        assert result.returncode == 0, result.stdout + result.stderr
        assert report_counts(result.stdout)["succeeded"] == 100
        assert read_json(out)["run"]["protocol"] == protocol


def test_error_statuses_count_as_failed_and_the_exit_status_says_so(
        basic_server: ServerProcess) -> None:
    result = run_load("-n", "30", "-c", "3", "--h1", f"{basic_server.url}/status/503")
    assert result.returncode == 1, result.stdout + result.stderr
    counts = assert_counts_add_up(result.stdout)
    assert counts["failed"] == 30
    assert "0 2xx, 0 3xx, 0 4xx, 30 5xx" in result.stdout


def test_duration_run_with_warm_up_ends_on_time(basic_server: ServerProcess,
                                                tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_load("-D", "1", "--warm-up-time", "0.3", "-c", "4", "--h1", "--json",
                      str(tmp_path / "r.json"), f"{basic_server.url}/hello")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert_counts_add_up(result.stdout)
    results = read_json(tmp_path / "r.json")["results"]
    assert 0.9 <= results["duration_s"] <= 1.5
    assert elapsed < 10
    assert results["series"] and results["series"][0]["second"] == 0


# bad servers: errors by kind, the run ends, the exit status says it failed

def test_a_refused_port_is_a_connect_error(unused_port: int) -> None:
    result = run_load("-n", "100", "-c", "2", "--h1", f"http://127.0.0.1:{unused_port}/")
    assert result.returncode == 1
    assert error_counts(result.stdout)["connect"] == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert_counts_add_up(result.stdout)


def test_a_server_that_closes_mid_response_is_a_reset() -> None:
    def half(connection, number: int) -> None:
        connection.respond(HELLO[:-5])
        connection.transport.close()

    with RawServer(half) as server:
        result = run_load("-n", "20", "-c", "2", "--h1", server.url)
    assert result.returncode == 1
    assert_counts_add_up(result.stdout)
    assert error_counts(result.stdout)["reset"] == 20


def test_garbage_is_a_protocol_error() -> None:
    with RawServer(lambda connection, number: connection.respond(b"SSH-2.0-nope\r\n\r\n")) \
            as server:
        result = run_load("-n", "10", "-c", "2", "--h1", server.url)
    assert result.returncode == 1
    assert error_counts(result.stdout)["protocol"] == 10
    assert_counts_add_up(result.stdout)


def test_a_stalled_server_times_out_and_the_run_ends_on_time() -> None:
    with RawServer(lambda connection, number: None) as server:
        started = time.monotonic()
        result = run_load("-D", "1", "-c", "2", "-T", "0.3", "--h1", server.url)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert error_counts(result.stdout)["timeout"] >= 2
    assert_counts_add_up(result.stdout)
    assert elapsed < 8


# honest latency: --rate measures from the due time

def p99_ms(document: dict) -> float:
    return document["summary"]["latency_ns"]["p99"] / 1e6


def test_a_stall_shows_in_p99_with_rate_and_hides_in_a_closed_loop(tmp_path: Path) -> None:
    with RawServer(StallOnce(after=0.3, stall=0.5)) as server:
        rate = run_load("-D", "1.5", "-c", "4", "--h1", "--rate", "400", "--json",
                        str(tmp_path / "rate.json"), server.url)
    with RawServer(StallOnce(after=0.3, stall=0.5)) as server:
        closed = run_load("-D", "1.5", "-c", "4", "--h1", "--json",
                          str(tmp_path / "closed.json"), server.url)
    rate_doc, closed_doc = read_json(tmp_path / "rate.json"), read_json(tmp_path / "closed.json")
    assert rate.returncode == 0, rate.stdout + rate.stderr
    assert closed.returncode == 0, closed.stdout + closed.stderr
    # About a third of the rate run's requests fell due during the stall and waited.
    assert p99_ms(rate_doc) >= 300, rate.stdout
    assert rate_doc["results"]["late"] > 0
    # The closed loop sent only 4 requests into the stall: under 1% of its requests.
    assert closed_doc["results"]["succeeded"] > 800, closed.stdout
    assert p99_ms(closed_doc) < 100, closed.stdout
    assert closed_doc["summary"]["latency_ns"]["max"] >= 400e6


def test_rate_is_held_and_unsent_requests_are_counted(tmp_path: Path) -> None:
    with RawServer(hello) as server:
        result = run_load("-D", "1", "-c", "2", "--h1", "--rate", "300", "--json",
                          str(tmp_path / "r.json"), server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    results = read_json(tmp_path / "r.json")["results"]
    assert 270 <= results["started"] <= 305
    with RawServer(lambda connection, number: None) as server:
        result = run_load("-D", "1", "-c", "1", "--h1", "--rate", "100", "-T", "5",
                          "--json", str(tmp_path / "s.json"), server.url)
    assert result.returncode == 1
    stalled = read_json(tmp_path / "s.json")["results"]
    # One request went out and hung; the rest fell due with no free connection.
    assert stalled["started"] == 1 and stalled["unsent"] >= 90
    assert stalled["errors"]["unfinished"] == 1


# outputs and exit status

def test_fail_if_sets_the_exit_status(basic_server: ServerProcess) -> None:
    url = f"{basic_server.url}/hello"
    ok = run_load("-n", "50", "--h1", url, "--fail-if", "p99>10s", "errors>1%")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    slow = run_load("-n", "50", "--h1", url, "--fail-if", "p50>1us")
    assert slow.returncode == 1
    assert "fail: --fail-if p50>1us" in slow.stdout
    bad = run_load("-n", "50", "--h1", url, "--fail-if", "p99>fast")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_csv_has_a_row_per_request_and_a_series(basic_server: ServerProcess,
                                                tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    result = run_load("-n", "120", "-c", "3", "--h1", "--csv", str(out),
                      f"{basic_server.url}/hello")
    assert result.returncode == 0, result.stdout + result.stderr
    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 120
    assert {row["status"] for row in rows} == {"200"}
    with (tmp_path / "r.csv.seconds.csv").open() as file:
        series = list(csv.DictReader(file))
    assert sum(int(row["requests"]) for row in series) == 120


def test_workers_merge_their_statistics(basic_server: ServerProcess, tmp_path: Path) -> None:
    result = run_load("-n", "301", "-c", "4", "-t", "2", "--h1", "--json",
                      str(tmp_path / "r.json"), f"{basic_server.url}/hello")
    assert result.returncode == 0, result.stdout + result.stderr
    assert assert_counts_add_up(result.stdout)["succeeded"] == 301
    results = read_json(tmp_path / "r.json")["results"]
    assert Histogram.from_dict(results["latency"]).count == 301
    assert len(results["connect_ns"]) == 4


def test_merge_combines_runs_as_one(basic_server: ServerProcess, tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = run_load("-n", "100" if name == "a" else "150", "--h1", "--json",
                          str(tmp_path / f"{name}.json"), f"{basic_server.url}/hello")
        assert result.returncode == 0
    merged = run_load("merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                      "--json", str(tmp_path / "m.json"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert report_counts(merged.stdout)["succeeded"] == 250
    one = Histogram.from_dict(read_json(tmp_path / "a.json")["results"]["latency"])
    one.merge(Histogram.from_dict(read_json(tmp_path / "b.json")["results"]["latency"]))
    assert read_json(tmp_path / "m.json")["results"]["latency"] == one.to_dict()
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    refused = run_load("merge", str(tmp_path / "a.json"), str(broken))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["ftp://example.com/"], ["-n", "0", "http://127.0.0.1:1/"], ["http://"],
    ["-D", "soon", "http://127.0.0.1:1/"], ["--bogus", "http://127.0.0.1:1/"],
    ["-H", "no-colon", "http://127.0.0.1:1/"], ["-d", "/no/such/file", "http://127.0.0.1:1/"],
    [],
])
def test_bad_options_are_one_line_and_exit_2(args: list[str]) -> None:
    result = run_load(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_ctrl_c_prints_the_report_so_far() -> None:
    with RawServer(hello) as server:
        process = start_load("-D", "60", "-c", "2", "--h1", server.url)
        try:
            wait_until(lambda: server.requests > 100, timeout=15, what="load arrives")
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, stdout + stderr
    assert "interrupted" in stdout and "Traceback" not in stderr
    counts = assert_counts_add_up(stdout)
    assert counts["succeeded"] > 50


def test_qactuar_load_is_a_subcommand_of_qactuar(basic_server: ServerProcess) -> None:
    import subprocess
    import sys

    from conftest import child_env

    result = subprocess.run([sys.executable, "-c", "import sys; from qactuar.cli import main; "
                             "sys.argv = ['qactuar', 'load', '-n', '5', '-c', '2', sys.argv[1]]; "
                             "main()", f"{basic_server.url}/hello"],
                            capture_output=True, text=True, timeout=30, env=child_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert report_counts(result.stdout)["succeeded"] == 5


# WebSocket

def test_websocket_echo_round_trips(start_server, tmp_path: Path) -> None:
    server = start_server("apps.ws_app:app")
    url = server.url.replace("http://", "ws://")
    result = run_load("-n", "300", "-c", "3", "-m", "2", "--json", str(tmp_path / "r.json"),
                      f"{url}/echo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert assert_counts_add_up(result.stdout)["succeeded"] == 300
    results = read_json(tmp_path / "r.json")["results"]
    assert results["bytes_data"] == 300 * 16
    assert Histogram.from_dict(results["latency"]).count == 300
    refused = run_load("-n", "10", "-c", "2", f"{url}/refuse")
    assert refused.returncode == 1
    assert error_counts(refused.stdout)["protocol"] == 2
    assert "Traceback" not in refused.stderr
