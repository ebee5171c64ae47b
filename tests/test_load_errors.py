"""`qactuar load` against bad servers on HTTP/1.1 and h2c alike: errors counted by kind
(connect, timeout, reset, protocol), the counts add up, the run ends on time and the exit
status says it failed; the CSV has a row for every errored request too.  Plus the report's
lines the issue lists, and wss://."""

from __future__ import annotations

import csv
import socket
import time
from pathlib import Path

import pytest
from load_helpers import RawServer, error_counts, read_json, report_counts, run_load

from conftest import write_tls_files
from qactuar.load.report import format_report
from qactuar.load.stats import RunStats

PROTOCOLS = pytest.mark.parametrize("extra", [["--h1"], []], ids=["h1", "h2c"])


def counts_add_up(output: str) -> dict[str, int]:
    counts = report_counts(output)
    assert counts["started"] == counts["succeeded"] + counts["failed"] + counts["errored"], output
    assert counts["done"] == counts["started"], output
    return counts


def only_errors_of(output: str, kind: str) -> int:
    errors = error_counts(output)
    assert errors[kind] > 0, output
    assert all(count == 0 for name, count in errors.items() if name != kind), output
    return errors[kind]


@PROTOCOLS
def test_refused_connections_are_connect_errors_with_csv_rows(extra: list[str],
                                                              tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "r.csv"
    result = run_load("-n", "50", "-c", "3", *extra, "--csv", str(out),
                      f"http://127.0.0.1:{port}/")
    assert result.returncode == 1, result.stdout + result.stderr
    counts = counts_add_up(result.stdout)
    assert only_errors_of(result.stdout, "connect") == counts["errored"] == 3
    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == counts["started"] and {row["error"] for row in rows} == {"connect"}
    assert "Traceback" not in result.stderr


@PROTOCOLS
def test_a_server_that_closes_without_answering_is_a_reset(extra: list[str]) -> None:
    def close(connection, number: int) -> None:
        connection.transport.close()

    with RawServer(close) as server:
        result = run_load("-n", "20", "-c", "2", *extra, server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    counts = counts_add_up(result.stdout)
    assert only_errors_of(result.stdout, "reset") == counts["errored"] == 20


@PROTOCOLS
def test_bytes_that_are_not_http_are_protocol_errors(extra: list[str]) -> None:
    garbage = b"SSH-2.0-OpenSSH_9.2\r\n\r\n" + bytes(range(256))
    with RawServer(lambda connection, number: connection.respond(garbage)) as server:
        result = run_load("-n", "10", "-c", "2", *extra, server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    counts = counts_add_up(result.stdout)
    assert only_errors_of(result.stdout, "protocol") == counts["errored"] == 10


@PROTOCOLS
@pytest.mark.parametrize("length", [["-n", "6"], ["-D", "1"]], ids=["n", "D"])
def test_a_stalled_server_times_out_and_the_run_ends_on_time(extra: list[str],
                                                            length: list[str]) -> None:
    with RawServer(lambda connection, number: None) as server:
        started = time.monotonic()
        result = run_load(*length, "-c", "2", "-T", "0.5", *extra, server.url, timeout=30)
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    counts_add_up(result.stdout)
    assert error_counts(result.stdout)["timeout"] >= 2, result.stdout
    # Each request waits -T before it is given up (-n 6 on 2 connections: about 1.5 s);
    # -D ends the run on time, whatever is in flight.
    assert elapsed < 20


def test_the_report_has_every_figure_the_issue_lists(tmp_path: Path) -> None:
    from load_helpers import hello

    with RawServer(hello) as server:
        result = run_load("-n", "200", "-c", "2", "--h1", "--json", str(tmp_path / "r.json"),
                          server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    results = read_json(tmp_path / "r.json")["results"]
    lines = {line.split(":")[0].strip(): line for line in result.stdout.splitlines()}
    assert f"({results['bytes_total']}) total" in lines["traffic"]
    assert f"({results['bytes_headers']}) headers" in lines["traffic"]
    assert "200 2xx" in lines["status codes"]
    for row in ("time for request", "time for connect", "time to 1st byte", "req/s"):
        assert len(lines[row].split()) >= 5 and "-" not in lines[row].split(":")[1], lines[row]
    for label in ("p50 ", "p90 ", "p99 ", "p99.9 ", "max "):
        assert label in lines["latency"], lines["latency"]
    assert "requests per CPU-second" in lines["tool CPU"]
    first = result.stdout.splitlines()[0]
    assert first.startswith("finished in ") and " req/s, " in first, first


def test_a_busy_tool_is_warned_about() -> None:
    stats = RunStats()
    stats.succeeded = stats.started = 1000
    stats.duration_s = 2.0
    stats.cpu_s = 1.95
    assert "warning: the tool used 98% of a core" in format_report(stats, 1000, 1, None, "h1")
    stats.cpu_s = 0.5
    assert "warning" not in format_report(stats, 1000, 1, None, "h1")


def test_websocket_over_tls(start_server, tmp_path: Path) -> None:
    files = write_tls_files(tmp_path)
    server = start_server("apps.ws_app:app", "--ssl-cert-path", str(files["cert"]),
                          "--ssl-key-path", str(files["key"]))
    url = server.url.replace("https://", "wss://")
    assert url.startswith("wss://")
    result = run_load("-n", "200", "-c", "2", "-m", "2", "--json", str(tmp_path / "r.json"),
                      f"{url}/echo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts_add_up(result.stdout)["succeeded"] == 200
    document = read_json(tmp_path / "r.json")
    assert document["run"]["protocol"] == "ws"
    assert document["results"]["bytes_data"] == 200 * 16


@pytest.mark.parametrize("extra", [["--h1"], ["-t", "2", "-c", "2"]], ids=["one", "workers"])
def test_sigint_prints_the_report_so_far_and_writes_the_files(extra: list[str],
                                                              tmp_path: Path) -> None:
    import signal

    from load_helpers import hello, start_load

    from conftest import wait_until

    with RawServer(hello) as server:
        process = start_load("-D", "60", *extra, "--h1", "--json", str(tmp_path / "r.json"),
                             "--html", str(tmp_path / "r.html"), server.url)
        try:
            wait_until(lambda: server.requests > 200, 20, "load to arrive")
            process.send_signal(signal.SIGINT)  # to the command's process only
            stdout, stderr = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, stdout + stderr
    assert stdout.startswith("interrupted: the report covers the run so far"), stdout
    assert "Traceback" not in stderr, stderr
    counts = counts_add_up(stdout)
    assert counts["succeeded"] > 100
    document = read_json(tmp_path / "r.json")
    assert document["run"]["interrupted"] is True
    assert document["results"]["succeeded"] == counts["succeeded"]
    assert "<svg" in (tmp_path / "r.html").read_text()


def test_n_requests_at_a_rate_end_after_n(tmp_path: Path) -> None:
    from load_helpers import hello

    with RawServer(hello) as server:
        result = run_load("-n", "120", "-c", "2", "--h1", "--rate", "600", "--json",
                          str(tmp_path / "r.json"), server.url)
        assert server.requests == 120
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts_add_up(result.stdout)["succeeded"] == 120
    results = read_json(tmp_path / "r.json")["results"]
    # The 120th request fell due 119/600 s after the first: the rate was kept, not exceeded.
    assert results["duration_s"] >= 119 / 600 and results["unsent"] == 0


@PROTOCOLS
def test_an_unreachable_server_is_connect_errors_and_the_run_ends(extra: list[str]) -> None:
    # A listening socket that never accepts, its queue full: the kernel drops further SYNs,
    # so a connect neither succeeds nor is refused, as with a host that does not answer.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            started = time.monotonic()
            result = run_load("-n", "100", "-c", "2", "-T", "0.5", *extra,
                              f"http://127.0.0.1:{port}/", timeout=30)
            elapsed = time.monotonic() - started
        finally:
            for filler in fillers:
                filler.close()
    assert result.returncode == 1, result.stdout + result.stderr
    counts = counts_add_up(result.stdout)
    assert only_errors_of(result.stdout, "connect") == counts["errored"] == 2
    assert elapsed < 20 and "Traceback" not in result.stderr
