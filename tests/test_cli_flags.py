"""The flags people bring from uvicorn and gunicorn: -w/--workers (implies prefork),
repeatable -b, --log-level, --log-config, --env-file, --factory, -V, the grouped --help,
admin flags without the admin plane, LOG_FORMAT json and pids on worker lines."""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from pathlib import Path

import httpx

from conftest import (
    CollectedProcess,
    ServerProcess,
    assert_one_line_error,
    child_env,
    run_failing_server,
    run_qactuar,
    run_to_exit,
    wait_until,
)

WORKER_LINE = re.compile(r"Listening on \S+ \(prefork model, \w+ loop, pid (\d+)\)")


def serve(*args: str, cwd: Path | None = None) -> ServerProcess:
    return ServerProcess([*args, "--host", "127.0.0.1", "--port", "0"], cwd=cwd)


def test_workers_alone_implies_prefork() -> None:
    server = serve("apps.process_app:app", "-w", "2", "--no-access-log")
    try:
        server.wait_for_log(r"Prefork supervisor pid \d+: .*starting 2 worker\(s\)")
        wait_until(lambda: len(WORKER_LINE.findall(server.output)) == 2, what="two workers")
        pids = {int(pid) for pid in WORKER_LINE.findall(server.output)}
        seen = {int(httpx.get(f"{server.url}/pid", timeout=5).text) for _ in range(40)}
        assert seen <= pids
        # Worker lines carry their pid.
        assert any(re.search(rf"\[pid {pid}\] Listening on", server.output) for pid in pids)
    finally:
        assert server.stop() == 0


def test_workers_with_the_async_model_named_is_refused() -> None:
    line = assert_one_line_error(run_failing_server("--model", "async", "--workers", "4"))
    assert "WORKERS = 4" in line and "--model prefork" in line


def test_bind_is_repeatable(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    server = ServerProcess(["apps.basic:app", "-b", "127.0.0.1:0", "-b", f"unix:{path}"])
    try:
        server.wait_for_log(rf"Listening on unix:{re.escape(str(path))}")
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport) as client:
            assert client.get("http://app/hello").text == "Hello, world!"
        assert httpx.get(f"{server.url}/hello", timeout=5).text == "Hello, world!"
    finally:
        assert server.stop() == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_log_level_warning_hides_info_and_access_lines() -> None:
    port = free_port()
    proc = CollectedProcess([sys.executable, "-m", "qactuar", "apps.basic:app", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"])
    try:
        deadline = time.monotonic() + 15

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/hello", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert time.monotonic() < deadline, proc.output
                return False

        wait_until(answers, what="the server answering")
    finally:
        proc.proc.terminate()
        proc.proc.wait(15)
    proc._reader.join(5)
    assert "INFO" not in proc.output and "ACCESS" not in proc.output, proc.output


def test_log_config_file(tmp_path: Path) -> None:
    logs = {"version": 1, "disable_existing_loggers": False,
            "formatters": {"f": {"format": "CUSTOM|{levelname}|{message}", "style": "{"}},
            "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "f",
                                 "stream": "ext://sys.stdout"}},
            "loggers": {"qt_server": {"handlers": ["out"], "level": "INFO"}}}
    (tmp_path / "logging.json").write_text(json.dumps(logs))
    server = serve("apps.basic:app", "--log-config", str(tmp_path / "logging.json"))
    try:
        assert any(line.startswith("CUSTOM|INFO|Listening on") for line in server.lines)
    finally:
        assert server.stop() == 0
    (tmp_path / "bad.json").write_text('{"handlers": {}}')
    line = assert_one_line_error(run_failing_server("--log-config", str(tmp_path / "bad.json")))
    assert "LOG_CONFIG" in line


def test_env_file_sets_settings_without_overriding_the_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("# settings\nexport QACTUAR_ROOT_PATH=/from-file\n"
                        'QACTUAR_SERVER_HEADER="false"\nQACTUAR_ACCESS_LOG=false  # quiet\n')
    server = serve("apps.scope_echo:app", "--env-file", str(env_file))
    try:
        response = httpx.get(f"{server.url}/x", timeout=5)
        assert response.json()["root_path"] == "/from-file"
        assert "server" not in response.headers
    finally:
        assert server.stop() == 0
    assert "ACCESS" not in server.output
    env_file.write_text("not a setting line\n")
    line = assert_one_line_error(run_failing_server("--env-file", str(env_file)))
    assert "line 1" in line


def test_factory() -> None:
    server = serve("apps.factory_app:create_app", "--factory")
    try:
        assert httpx.get(f"{server.url}/", timeout=5).text == "from factory"
    finally:
        assert server.stop() == 0
    result = run_failing_server("apps.factory_app:broken_factory", "--factory")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "qactuar: error: app factory 'apps.factory_app:broken_factory' raised RuntimeError: "
        "no database configured")


def test_short_version_flag() -> None:
    result = run_qactuar("-V")
    assert result.returncode == 0 and result.stdout.startswith("qactuar ")


def test_help_is_grouped_with_examples() -> None:
    result = run_to_exit([sys.executable, "-m", "qactuar", "--help"], child_env())
    headings = ["Application:", "Binding:", "TLS:", "Processes:", "Timeouts and limits:",
                "Logging:", "Protocols:", "Proxies:", "Development:"]
    positions = [result.stdout.index("\n" + heading) for heading in headings]
    assert positions == sorted(positions)
    binding = result.stdout[positions[1]:positions[2]]
    assert "-b, --bind" in binding and "--keep-alive-timeout" not in binding
    assert "--forwarded-allow-ips" in result.stdout[positions[7]:positions[8]]
    assert "qactuar main:app -b 0.0.0.0:8000 -w 4" in result.stdout


def test_admin_flags_without_the_admin_plane_are_refused() -> None:
    line = assert_one_line_error(run_failing_server("--admin-port", "9001"))
    assert "--admin-port" in line and "add --admin" in line


def test_json_logs_parse_line_by_line() -> None:
    server = serve("apps.basic:app", "--log-format", "json")
    try:
        httpx.get(f"{server.url}/hello?x=1", timeout=5)
        server.wait_for_log(r'"logger": "qt_access"')
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in server.lines if line.strip()]
    access = [r for r in records if r["logger"] == "qt_access"]
    assert access[0]["client"].startswith("127.0.0.1:")
    assert access[0]["method"] == "GET" and access[0]["path"] == "/hello?x=1"
    assert access[0]["status"] == 200 and access[0]["bytes"] == 13
    assert access[0]["protocol"] == "HTTP/1.1" and access[0]["duration_ms"] >= 0
    assert all(r["pid"] == server.proc.pid for r in records)
    assert any(r["message"].startswith("Listening on") for r in records)
