"""Beans inside `qactuar module:app`: BEANS in the server's config, order around lifespan
and listening, the app reading a bean, gating, escalation, placement per process model,
the bounded stop and the blocked-loop detector.  Real servers, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess, assert_one_line_error, read_response, run_qactuar, wait_until
from pod_helpers import PodProcess, index_of
from qactuar.pod.pod import CANCEL_GRACE, EXIT_BEAN_FAILED


def beans_env(*beans: dict, **settings: str) -> dict[str, str]:
    env = {"QACTUAR_BEANS": json.dumps(list(beans)), "QACTUAR_STOP_WAIT_TIME": "0.5"}
    env.update({f"QACTUAR_{key}": value for key, value in settings.items()})
    return env


def serve(*args: str, env: dict[str, str]) -> ServerProcess:
    return ServerProcess([*args, "--host", "127.0.0.1", "--port", "0"], env=env)


COUNTER = {"core": "apps.pod_beans.Counter", "label": "counter"}


def test_starlette_app_reads_a_beans_state_through_lifespan_state_and_current_pod() -> None:
    server = serve("apps.pod_app:app", env=beans_env(COUNTER))
    try:
        counts = []

        def counted() -> bool:
            reply = httpx.get(f"{server.url}/counter").json()
            counts.append(reply["count"])
            assert reply["state"] == "running" and reply["same_pod"] is True
            return reply["count"] > 0 and len(set(counts)) > 1

        wait_until(counted, what="the counter bean's count to move, as the app sees it")
        missing = httpx.get(f"{server.url}/missing")
        assert missing.status_code == 404
        assert missing.text == ("UnknownBean: no bean has the label 'missing' "
                                "(labels: counter)")
        assert server.stop() == 0
    finally:
        server.stop()
    out = server.output
    # Beans start after lifespan startup and before listening; they stop after the
    # connections drained and before lifespan shutdown.
    assert index_of(out, "APP startup") < index_of(out, "BEAN counter id=1") \
        < index_of(out, "Listening on")
    assert index_of(out, "Shutting down") < index_of(out, "BEAN counter 1 got SIGTERM") \
        < index_of(out, "BEAN counter 1 stopped") < index_of(out, "APP shutdown")


@pytest.mark.parametrize("model", ["async", "prefork"])
def test_no_connection_is_served_before_the_gate_bean_is_ready(tmp_path: Path,
                                                              model: str) -> None:
    go = tmp_path / "go"
    with socket.socket() as probe:  # a free port, known before the server listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = beans_env({"core": "apps.pod_beans.Gate", "label": "gate", "gate": True,
                     "go": str(go)})
    pod = PodProcess(command=[sys.executable, "-m", "qactuar", "apps.pod_app:gate_app", "--host",
                              "127.0.0.1", "--port", str(port), "--model", model,
                              "--workers", "1"], env=env)
    try:
        pod.wait_for("Waiting for 1 gate bean")
        # The socket is bound (connections wait in its backlog) but nothing is served.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert "Listening on" not in pod.output
            go.touch()
            status, _, body = read_response(client, timeout=10)
        assert status.startswith(b"HTTP/1.1 200")
        assert body == b"gate ready=True"
        pod.signal(signal.SIGTERM)
        assert pod.wait() == 0
    finally:
        pod.kill()
    out = pod.output
    assert index_of(out, "(label 'gate') is ready") < index_of(out, "Listening on") \
        < index_of(out, "ACCESS")


@pytest.mark.parametrize("model, placement", [("async", "each_worker"),
                                              ("prefork", "each_worker"),
                                              ("prefork", "one_worker"),
                                              ("prefork", "supervisor"),
                                              ("postfork", "each_worker")])
def test_a_bean_past_its_restart_limit_stops_the_server_with_a_non_zero_exit(
        tmp_path: Path, model: str, placement: str) -> None:
    env = beans_env({"core": "apps.pod_beans.crash", "label": "crashy", "restart": "transient",
                     "max_restarts": 2, "backoff": 0, "path": str(tmp_path / "runs"),
                     "delay": 0.2, "placement": placement})
    server = serve("apps.basic:app", "--model", model, "--workers", "1", env=env)
    try:
        assert server.proc.wait(20) == EXIT_BEAN_FAILED, server.output
    finally:
        server.stop()
    out = server.output
    assert re.search(r"Bean #1 apps\.pod_beans\.crash \(label 'crashy'\) failed the pod: it "
                     r"ended \(raised\) more than 2 restart\(s\)", out), out
    assert out.count("Traceback (most recent call last)") == 3  # each one logged, in full


def test_a_bad_bean_in_the_server_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from conftest import child_env

    for beans, message in [
        ('[{"core": "apps.pod_beans.greet", "nam": 1}]', "unexpected keyword argument 'nam'"),
        ('[{"core": "no_such.module"}]', "no module named 'no_such'"),
        ("5", "config key BEANS = 5"),
        ('[{"core": "apps.pod_beans.greet", "restart": "always"}]', "restart = 'always'"),
    ]:
        result = run_qactuar("apps.basic:app", "--port", "0",
                             env=child_env(QACTUAR_BEANS=beans))
        line = assert_one_line_error(result)
        assert line.startswith("qactuar: error:") and message in line, line
    prefork = run_qactuar("apps.basic:app", "--port", "0", "--model", "prefork", env=child_env(
        QACTUAR_BEANS='[{"core": "apps.pod_beans.forever", "label": "a", "placement": '
                      '"supervisor"}, {"core": "apps.pod_beans.forever", "after": "a"}]'))
    assert "placement is supervisor and this one's each_worker" in \
        assert_one_line_error(prefork)
    config = tmp_path / "server.toml"
    config.write_text('STOP_WAIT_TIME = -1\n')
    line = assert_one_line_error(run_qactuar("apps.basic:app", "--config", str(config)))
    assert "config key STOP_WAIT_TIME = -1" in line


def test_prefork_placement_and_the_one_worker_bean_moves_after_kill_9(tmp_path: Path) -> None:
    where = tmp_path / "where"
    beans = [{"core": "apps.pod_beans.where", "path": str(where), "tag": tag,
              "placement": placement}
             for tag, placement in [("each", "each_worker"), ("one", "one_worker"),
                                    ("sup", "supervisor")]]
    server = serve("apps.basic:app", "--model", "prefork", "--workers", "2",
                   env=beans_env(*beans))
    try:
        supervisor = int(server.wait_for_log(r"Prefork supervisor pid (\d+)").group(1))

        def placed() -> dict[str, list[int]]:
            found: dict[str, list[int]] = {}
            for line in where.read_text().splitlines() if where.exists() else []:
                tag, pid = line.split()
                found.setdefault(tag, []).append(int(pid))
            return found

        wait_until(lambda: len(placed().get("each", [])) == 2 and "one" in placed(),
                   what="the beans of both workers")
        # Only a worker that listens can take the bean over (it answers TAKE_OVER_SIGNAL
        # from then on); until then the move goes to the next worker started.
        wait_until(lambda: server.output.count("Listening on") == 2, what="both workers")
        first = placed()
        assert first["sup"] == [supervisor]
        assert supervisor not in first["each"] and len(set(first["each"])) == 2
        host = first["one"][0]
        assert host in first["each"]
        os.kill(host, signal.SIGKILL)
        wait_until(lambda: len(placed()["one"]) == 2, what="the one_worker bean to move")
        moved = placed()["one"][1]
        assert moved != host and moved in first["each"]  # a live worker took it over
        server.wait_for_log(f"Worker pid {host} ended: its one_worker bean\\(s\\) move to "
                            f"worker pid {moved}")
        assert len(placed()["sup"]) == 1  # the supervisor's bean was never restarted
        # Let the replacement worker come up first, so the stop below drains three
        # serving workers (tests/test_supervisor_signals.py covers the earlier window).
        wait_until(lambda: server.output.count("Listening on") == 3,
                   what="the replacement worker")
        # Every worker dies at once: no live worker to move to, so the next one
        # started runs the one_worker bean, and only that one.
        workers = [int(pid) for pid in re.findall(r"Worker pid (\d+) spawned", server.output)]
        assert len(workers) == 3 and host in workers
        running = [pid for pid in workers if pid != host]
        for signum in (signal.SIGSTOP, signal.SIGKILL):  # stopped first: neither can take
            for pid in running:                           # the bean over from the other
                os.kill(pid, signum)
        server.wait_for_log(r"ended: its one_worker bean\(s\) go to the next worker")
        wait_until(lambda: len(placed()["one"]) == 3, what="the one_worker bean to restart")
        wait_until(lambda: server.output.count("Listening on") == 5, what="two new workers")
        host = placed()["one"][2]
        assert host not in workers and len(placed()["one"]) == 3
        server.wait_for_log(f"Worker pid {host} runs the one_worker bean")
        assert server.stop() == 0
    finally:
        server.stop()


def test_postfork_runs_the_beans_in_the_parent(tmp_path: Path) -> None:
    where = tmp_path / "where"
    server = serve("apps.basic:app", "--model", "postfork",
                   env=beans_env({"core": "apps.pod_beans.where", "path": str(where),
                                  "tag": "parent"}))
    try:
        parent = int(server.wait_for_log(r"pid (\d+), up to").group(1))
        wait_until(where.exists, what="the bean to start")
        assert httpx.get(server.url + "/").status_code == 200  # a child serves meanwhile
        assert where.read_text().split() == ["parent", str(parent)]
        assert server.stop() == 0
    finally:
        server.stop()
    assert "BEAN parent cancelled" in server.output


def test_a_bean_ignoring_cancellation_does_not_hold_the_server(tmp_path: Path) -> None:
    server = serve("apps.basic:app", env=beans_env({"core": "apps.pod_beans.stubborn"},
                                                   STOP_WAIT_TIME="0.2"))
    try:
        started = time.monotonic()
        assert server.stop() == 0
        took = time.monotonic() - started
    finally:
        server.stop()
    assert re.search(r"Bean #1 apps\.pod_beans\.stubborn ignored cancellation", server.output)
    assert took < 0.2 + CANCEL_GRACE + 3, server.output


def test_the_blocked_loop_detector_logs_the_blocking_stack(tmp_path: Path) -> None:
    server = serve("apps.pod_app:app",
                   env=beans_env({"core": "apps.pod_beans.blocker", "seconds": 0.6},
                                 BLOCKED_LOOP_THRESHOLD="0.2"))
    try:
        server.wait_for_log("BEAN unblocked")
        bean_report = server.output[index_of(server.output, "Event loop blocked"):]
        assert 'in blocker\n    time.sleep(seconds)' in bean_report
        start = len(server.lines)
        assert httpx.get(server.url + "/block?seconds=0.6").text == "blocked"
        server.wait_for_log("Event loop blocked", start=start)
        request_report = "\n".join(server.lines[start:])
        assert "in block\n    time.sleep(" in request_report
        assert server.stop() == 0
    finally:
        server.stop()
    assert server.output.count("Event loop blocked") == 2  # once per episode


@pytest.mark.parametrize("model, placement", [("postfork", "each_worker"),
                                              ("prefork", "supervisor")])
def test_sigterm_stops_a_parent_whose_gate_bean_never_becomes_ready(
        tmp_path: Path, model: str, placement: str) -> None:
    # The postfork parent and the prefork supervisor run their beans in a thread and
    # wait for the gates before their accept/supervision loop: they must still answer
    # SIGTERM meanwhile (they ignored it, or died of it, before).
    env = beans_env({"core": "apps.pod_beans.Gate", "gate": True, "placement": placement,
                     "go": str(tmp_path / "never")})
    pod = PodProcess(command=[sys.executable, "-m", "qactuar", "apps.basic:app", "--host",
                              "127.0.0.1", "--port", "0", "--model", model, "--workers", "1"],
                     env=env)
    try:
        pod.wait_for("Waiting for 1 gate bean")
        pod.signal(signal.SIGTERM)
        assert pod.wait(10) == 0
    finally:
        pod.kill()
    out = pod.output
    assert index_of(out, "Received SIGTERM") \
        < index_of(out, "Bean #1 apps.pod_beans.Gate cancelled") < index_of(out, "Pod stopped")
    assert "Listening on" not in out and "Traceback" not in out

def test_a_second_sigterm_while_the_gate_bean_is_not_ready_cancels_it_at_once() -> None:
    env = beans_env({"core": "apps.pod_beans.Gate", "gate": True, "go": "/nonexistent"},
                    STOP_WAIT_TIME="60")
    pod = PodProcess(command=[sys.executable, "-m", "qactuar", "apps.basic:app", "--host",
                              "127.0.0.1", "--port", "0"], env=env)
    try:
        pod.wait_for("Waiting for 1 gate bean")
        pod.signal(signal.SIGTERM)
        pod.wait_for("Stopping 1 bean")
        pod.signal(signal.SIGTERM)  # not waiting the 60s of STOP_WAIT_TIME any longer
        assert pod.wait(10) == 0
    finally:
        pod.kill()
    assert "Cancelling 1 bean(s) still running: #1 apps.pod_beans.Gate" in pod.output


@pytest.mark.parametrize("model", ["async", "prefork"])
def test_a_bean_failing_the_pod_while_the_server_drains_still_exits_non_zero(
        tmp_path: Path, model: str) -> None:
    go = tmp_path / "go"
    env = beans_env({"core": "apps.pod_beans.crash_when", "go": str(go),
                     "restart": "transient", "max_restarts": 0})
    server = serve("apps.basic:app", "--model", model, "--workers", "1", env=env)
    try:
        with server.connect() as client:
            client.sendall(b"GET /sleep?s=1 HTTP/1.1\r\nHost: t\r\n\r\n")
            server.send_signal(signal.SIGTERM)
            server.wait_for_log(r"Shutting down: no new connections, waiting up to \S+ for 1 "
                                r"connection")
            go.touch()  # the bean fails while the request is still being served
            server.wait_for_log("failed the pod")
            status, _, body = read_response(client, timeout=10)
        assert status.startswith(b"HTTP/1.1 200") and body == b"slept"
        assert server.proc.wait(10) == EXIT_BEAN_FAILED, server.output
    finally:
        server.stop()


def test_a_bean_waiting_to_start_does_not_use_up_the_stop_wait_time_of_the_others() -> None:
    # The second bean never started (its gate is not ready); the stop must not wait
    # STOP_WAIT_TIME for it before the gate bean even gets its SIGTERM.
    env = beans_env({"core": "apps.pod_beans.Unready", "label": "first", "gate": True},
                    {"core": "apps.pod_beans.forever", "after": "first"}, STOP_WAIT_TIME="60")
    pod = PodProcess(command=[sys.executable, "-m", "qactuar", "apps.basic:app", "--host",
                              "127.0.0.1", "--port", "0"], env=env)
    try:
        pod.wait_for("BEAN unready waiting")
        pod.signal(signal.SIGTERM)
        assert pod.wait(10) == 0
    finally:
        pod.kill()
    assert "BEAN unready stopped" in pod.output
    assert "Cancelling" not in pod.output
