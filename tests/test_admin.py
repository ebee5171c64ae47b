"""The admin plane (qactuar/admin) against real servers in every process model.

Every server is a real `qactuar` process with `--admin --admin-port 0`; the admin
address comes from its "Admin plane on" log line.  Requests are real HTTP over
real sockets (httpx, and its Unix-socket transport for ADMIN_SOCKET).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ServerProcess, assert_one_line_error, child_env, run_qactuar, wait_until

ADMIN_LINE = re.compile(r"Admin plane on http://([\d.]+):(\d+)")
MODELS = {"async": [], "prefork": ["--model", "prefork", "--workers", "2"],
          "postfork": ["--model", "postfork"]}


class AdminServer:
    """A qactuar process with the admin plane on, and clients for both ports."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        match = process.wait_for_log(ADMIN_LINE)
        self.admin_url = f"http://{match.group(1)}:{match.group(2)}"
        self.url = process.url
        self.model = next((m for m, args in MODELS.items() if args and args[1] in process.args),
                          "async")

    def admin(self, method: str, path: str, token: str | None = None,
              **kwargs: object) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if token:
            headers["authorization"] = f"Bearer {token}"
        return httpx.request(method, self.admin_url + path, headers=headers, timeout=30,
                             **kwargs)  # type: ignore[arg-type]

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, parsed by prometheus_client, by name and labels."""
        response = self.admin("GET", "/metrics")
        assert response.status_code == 200
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples


@pytest.fixture
def admin_server() -> Iterator[object]:
    started: list[ServerProcess] = []

    def start(model: str, *args: str, env: dict[str, str] | None = None) -> AdminServer:
        process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0",
                                 "--admin", "--admin-port", "0", "--no-access-log",
                                 *MODELS[model], *args], env=env)
        started.append(process)
        return AdminServer(process)

    yield start
    for process in started:
        process.stop()


def hello(url: str) -> int:
    """One request on a fresh connection (so prefork spreads them over workers)."""
    with httpx.Client(timeout=10) as client:
        response = client.get(url + "/", headers={"connection": "close"})
    assert response.text == "Hello, world!"
    return response.status_code


@pytest.mark.parametrize("model", list(MODELS))
def test_status_and_metrics_count_every_request_across_processes(admin_server, model):
    server = admin_server(model, "--gather-proc-stats", "--check-process-interval", "0.2")
    sent = 24
    for _ in range(sent):
        assert hello(server.url) == 200

    def counted() -> int:
        return server.admin("GET", "/status").json()["totals"]["requests"]

    # Postfork children report as they exit, just after answering.
    wait_until(lambda: counted() == sent, 10, f"{sent} requests in /status")
    status = server.admin("GET", "/status").json()
    assert status["server"]["model"] == model
    assert status["server"]["binds"] == [server.url]
    assert status["requests"]["http/1.1 2xx"] == sent
    roles = [p["role"] for p in status["processes"]]
    if model == "prefork":
        assert roles.count("worker") == 2 and "supervisor" in roles
        assert sum(p["requests"] for p in status["processes"] if p["role"] == "worker") == sent
    pids = {p["pid"] for p in status["processes"]}
    assert server.process.proc.pid in pids

    metrics = server.metrics()
    assert metrics["qactuar_http_requests_total{protocol=http/1.1,status_class=2xx}"] == sent
    assert metrics["qactuar_http_request_duration_seconds_count{}"] == sent
    assert metrics["qactuar_http_request_duration_seconds_bucket{le=+Inf}"] == sent
    assert metrics["qactuar_http_response_body_bytes_total{}"] == sent * len("Hello, world!")
    assert metrics["qactuar_worker_restarts_total{}"] == 0
    wait_until(lambda: any(k.startswith("qactuar_process_resident_memory_bytes")
                           for k in server.metrics()), 5, "RSS samples")
    rss = {k: v for k, v in server.metrics().items()
           if k.startswith("qactuar_process_resident_memory_bytes")}
    assert all(value > 1_000_000 for value in rss.values()), rss

    assert server.admin("GET", "/healthz").json() == {"status": "alive"}
    ready = server.admin("GET", "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_prefork_counters_survive_reload_and_a_killed_worker(admin_server):
    server = admin_server("prefork")
    for _ in range(10):
        hello(server.url)
    wait_until(lambda: server.admin("GET", "/status").json()["totals"]["requests"] == 10, 10,
               "10 requests counted")
    old = {p["pid"] for p in server.admin("GET", "/status").json()["processes"]
           if p["role"] == "worker"}
    reload = server.admin("POST", "/reload")
    assert reload.status_code == 200, reload.text
    new = set(reload.json()["workers"])
    assert new and not new & old
    # The old workers' counts arrive as they exit: never less than before the reload.
    assert server.metrics()["qactuar_http_requests_total{protocol=http/1.1,status_class=2xx}"] \
        >= 10
    wait_until(lambda: server.metrics()[
        "qactuar_http_requests_total{protocol=http/1.1,status_class=2xx}"] == 10, 10,
        "the old workers' final counts")
    for _ in range(5):
        hello(server.url)
    # A worker killed outright: counted as a restart, its last reported counts kept.
    server.metrics()
    victim = sorted(new)[0]
    os.kill(victim, 9)
    wait_until(lambda: server.metrics()["qactuar_worker_restarts_total{}"] == 1, 10,
               "the restart counted")
    status = server.admin("GET", "/status").json()
    assert "SIGKILL" in status["totals"]["last_exit"]
    assert server.metrics()[
        "qactuar_http_requests_total{protocol=http/1.1,status_class=2xx}"] == 15


def test_reload_with_a_broken_app_rolls_back(admin_server, tmp_path: Path):
    marker = tmp_path / "break"
    server = admin_server("prefork", env={"ADMIN_TEST_BREAK_FILE": str(marker)})
    wait_until(lambda: server.admin("GET", "/readyz").status_code == 200, 10, "ready")
    before = {p["pid"] for p in server.admin("GET", "/status").json()["processes"]}
    marker.write_text("")
    answer = server.admin("POST", "/reload")
    assert answer.status_code == 500
    assert "rolled back" in answer.json()["error"]
    assert "exited with code 3" in answer.json()["error"]
    for _ in range(6):
        assert hello(server.url) == 200
    after = {p["pid"] for p in server.admin("GET", "/status").json()["processes"]
             if p.get("stopping") is not True}
    assert before <= after
    # With the app fixed, the next reload goes through.
    marker.unlink()
    assert server.admin("POST", "/reload").status_code == 200


@pytest.mark.parametrize("model", list(MODELS))
def test_config_change_under_load_loses_no_request(admin_server, model):
    server = admin_server(model)
    failures: list[str] = []
    served = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status = hello(server.url)
                served[0] += 1
                if status != 200:
                    failures.append(str(status))
            except Exception as exc:  # counted, then asserted on
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: served[0] > 20, 10, "load running")
        current = server.admin("GET", "/config")
        etag = current.headers["etag"]
        assert current.json()["ACCESS_LOG"] is False
        live = server.admin("PATCH", "/config", json={"ACCESS_LOG": True},
                            headers={"if-match": etag})
        assert live.status_code == 200, live.text
        assert live.json()["applied"] == ["ACCESS_LOG"] and not live.json()["reloaded"]
        # The old ETag no longer matches: another operator's change is refused.
        stale = server.admin("PATCH", "/config", json={"ACCESS_LOG": False},
                             headers={"if-match": etag})
        assert stale.status_code == 412
        server.process.wait_for_log(r'ACCESS .*"GET / HTTP/1.1" 200')
        mark = served[0]
        # A setting read when a worker starts: prefork reloads gracefully, postfork
        # applies it from the next connection, the one async process refuses it.
        rolled = server.admin("PATCH", "/config", json={"MAX_HEADER_COUNT": 50})
        if model == "async":
            assert rolled.status_code == 409
            assert "MAX_HEADER_COUNT" in rolled.json()["error"]
        else:
            assert rolled.status_code == 200, rolled.text
            assert rolled.json()["reloaded"] is (model == "prefork")
            assert rolled.json()["config"]["MAX_HEADER_COUNT"] == 50
            if model == "prefork":
                server.process.wait_for_log(r"Admin plane: reload started")
        wait_until(lambda: served[0] > mark + 20, 10, "load after the change")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:5]


def test_config_validation_is_the_config_modules(admin_server):
    server = admin_server("async")
    bad = server.admin("PATCH", "/config", json={"KEEP_ALIVE_TIMEOUT": -1.5})
    assert bad.status_code == 400
    # The same line the command line prints for the same value.
    cli = assert_one_line_error(run_qactuar("admin_app:app", "--app-dir", "apps",
                                            "--keep-alive-timeout", "-1.5"))
    assert bad.json()["error"] in cli
    unknown = server.admin("PATCH", "/config", json={"KEEP_ALIVE": 3})
    assert unknown.status_code == 400
    assert "did you mean KEEP_ALIVE_TIMEOUT" in unknown.json()["error"]
    malformed = server.admin("PATCH", "/config", content=b"{not json")
    assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]
    bind = server.admin("PATCH", "/config", json={"PORT": 9})
    assert bind.status_code == 409 and "new bind" in bind.json()["error"]
    workers = server.admin("PATCH", "/config", json={"WORKERS": 4})
    assert workers.status_code == 409 and "async model has one process" in workers.json()["error"]
    assert server.admin("GET", "/config").json()["KEEP_ALIVE_TIMEOUT"] == 5
    assert server.admin("POST", "/workers", content=b"[1]").status_code == 400
    assert server.admin("GET", "/nowhere").status_code == 404
    assert server.admin("DELETE", "/status").status_code == 405
    assert "qactuar" in server.admin("GET", "/tasks").text


def test_prefork_workers_add_and_remove(admin_server):
    server = admin_server("prefork")
    added = server.admin("POST", "/workers", json={"delta": 1})
    assert added.status_code == 200 and added.json()["workers"] == 3

    def workers() -> int:
        return sum(1 for p in server.admin("GET", "/status").json()["processes"]
                   if p["role"] == "worker" and not p["stopping"])

    assert workers() == 3
    assert server.admin("POST", "/workers", json={"count": 1}).json()["workers"] == 1
    wait_until(lambda: workers() == 1, 10, "one worker")
    assert server.admin("POST", "/workers", json={"count": 0}).status_code == 400
    assert hello(server.url) == 200
    worker = next(p["pid"] for p in server.admin("GET", "/status").json()["processes"]
                  if p["role"] == "worker" and not p["stopping"])
    tasks = server.admin("GET", f"/tasks?pid={worker}").json()
    assert tasks["pid"] == worker and any("serve" in t["coroutine"] for t in tasks["tasks"])


def test_auth_rules(admin_server):
    server = admin_server("async", "--admin-token", "s3cret", "--admin-read-token", "peek")
    assert server.admin("GET", "/status").status_code == 401
    assert server.admin("GET", "/status", token="wrong").status_code == 401
    assert server.admin("GET", "/status", token="peek").status_code == 200
    refused = server.admin("PATCH", "/config", token="peek", json={"ACCESS_LOG": True})
    assert refused.status_code == 403
    ok = server.admin("PATCH", "/config", token="s3cret", json={"ACCESS_LOG": True})
    assert ok.status_code == 200
    server.process.wait_for_log(r"admin: config set ACCESS_LOG=True \(by token admin")
    # DNS rebinding: a foreign name that resolves here; a page of another site.
    rebinding = server.admin("GET", "/status", token="s3cret", headers={"host": "evil.example"})
    assert rebinding.status_code == 421
    cross = server.admin("POST", "/reload", token="s3cret",
                         headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-site" in cross.json()["error"]
    assert "s3cret" not in server.admin("GET", "/config", token="peek").text


def test_a_non_loopback_admin_without_token_refuses_to_start():
    line = assert_one_line_error(run_qactuar("admin_app:app", "--app-dir", "apps", "--port", "0",
                                             "--admin", "--admin-host", "0.0.0.0"))
    assert "ADMIN_TOKEN" in line


@pytest.mark.parametrize("model", ["async", "prefork"])
def test_unix_socket_is_private_and_names_the_peer(model, tmp_path: Path):
    path = tmp_path / "admin.sock"
    process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0", "--admin",
                             "--admin-host", "", "--admin-socket", str(path), *MODELS[model]],
                            env=child_env())
    try:
        process.wait_for_log(r"Admin plane on unix:")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, base_url="http://localhost", timeout=30) as client:
            assert client.get("/status").json()["server"]["model"] == model
            assert client.patch("/config", json={"ACCESS_LOG": False}).status_code == 200
        process.wait_for_log(rf"admin: config set ACCESS_LOG=False \(by uid:{os.getuid()}\)")
    finally:
        assert process.stop() == 0
    assert not path.exists()


@pytest.mark.parametrize("model", ["async", "prefork"])
def test_probes_on_the_main_port(model):
    process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0",
                             "--health-path", "/livez", "--ready-path", "/ready", *MODELS[model]])
    try:
        assert httpx.get(process.url + "/livez").json() == {"status": "alive"}
        assert httpx.get(process.url + "/ready").json() == {"status": "ready"}
        assert httpx.get(process.url + "/").text == "Hello, world!"
    finally:
        process.stop()


def test_metrics_count_by_protocol_and_body_bytes(admin_server):
    server = admin_server("async")
    body = b"x" * 1000
    # HTTP/2 with prior knowledge (h2c), and HTTP/1.1, each posting a body it gets back.
    with httpx.Client(http1=False, http2=True, timeout=10) as h2:
        for _ in range(3):
            response = h2.post(server.url + "/", content=body)
            assert response.http_version == "HTTP/2" and response.content == body
    with httpx.Client(timeout=10) as h1:
        assert h1.post(server.url + "/", content=body).content == body
    metrics = server.metrics()
    assert metrics["qactuar_http_requests_total{protocol=http/2,status_class=2xx}"] == 3
    assert metrics["qactuar_http_requests_total{protocol=http/1.1,status_class=2xx}"] == 1
    assert metrics["qactuar_http_request_body_bytes_total{}"] == 4 * len(body)
    assert metrics["qactuar_http_response_body_bytes_total{}"] == 4 * len(body)


def test_ctl_reports_the_servers_reason_and_exits_1(admin_server):
    server = admin_server("async", "--admin-token", "s3cret")
    port = server.admin_url.rsplit(":", 1)[1]

    def ctl(*args: str, token: str = "s3cret") -> subprocess.CompletedProcess[str]:
        return run_qactuar("ctl", "--port", port, "--token", token, *args)

    assert '"model": "async"' in ctl("status", "--json").stdout
    wrong = ctl("status", token="nope")
    assert wrong.returncode == 1 and "401" in wrong.stderr and "Traceback" not in wrong.stderr
    refused = ctl("workers", "+1")
    assert refused.returncode == 1 and "409" in refused.stderr
    bad = ctl("config", "set", "KEEP_ALIVE_TIMEOUT", "soon")
    assert bad.returncode == 2 and "expected a number of seconds" in bad.stderr
    gone = run_qactuar("ctl", "--port", "1", "status")
    assert gone.returncode == 1 and "cannot reach the admin plane" in gone.stderr
