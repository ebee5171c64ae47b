"""The admin plane's /pod view and actions against real servers (async and prefork).

Each server is a real `qactuar` process with BEANS and the admin plane on; beans added
through the API prove they run by writing to a file under tmp_path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_admin import MODELS, AdminServer

from conftest import ServerProcess, assert_one_line_error, child_env, run_qactuar, wait_until

BEANS = [{"core": "apps.pod_admin_beans.waiter", "label": "waiter"},
         {"core": "apps.pod_admin_beans.broken", "label": "broken"}]
TOKENS = ["--admin-token", "s3cret", "--admin-read-token", "peek"]


@pytest.fixture
def pod_server() -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(model: str) -> AdminServer:
        process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0",
                                 "--admin", "--admin-port", "0", "--no-access-log",
                                 *TOKENS, *MODELS[model]],
                                env={"QACTUAR_BEANS": json.dumps(BEANS),
                                     "QACTUAR_STOP_WAIT_TIME": "0.5"})
        started.append(process)
        return AdminServer(process)

    yield start
    for process in started:
        process.stop()


def pod_view(server: AdminServer, token: str = "peek", **query: int) -> list[dict[str, Any]]:
    path = "/pod" + "".join(f"?{k}={v}" for k, v in query.items())
    response = server.admin("GET", path, token=token)
    assert response.status_code == 200, response.text
    return response.json()["processes"]


def beans_labelled(processes: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [bean for process in processes for bean in process["beans"]
            if bean["label"] == label]


def act(server: AdminServer, path: str, body: dict[str, Any], token: str = "s3cret",
        pid: int | None = None) -> Any:
    return server.admin("POST", path + (f"?pid={pid}" if pid else ""), token=token, json=body)


def serving_pids(server: AdminServer) -> set[int]:
    """The processes whose beans are the configured each_worker ones."""
    return {p["pid"] for p in pod_view(server) if p["role"] in ("server", "worker")}


@pytest.mark.parametrize("model", ["async", "prefork"])
def test_pod_view_and_actions(pod_server: Any, model: str, tmp_path: Path) -> None:
    server = pod_server(model)
    # The list: every serving process runs the waiter, with its current stack, and
    # shows the broken bean's last error with its traceback.
    wait_until(lambda: len(beans_labelled(pod_view(server), "waiter")) == (
        2 if model == "prefork" else 1), what="the waiter bean in every worker",
        seen=lambda: pod_view(server))
    processes = pod_view(server)
    pids = serving_pids(server)
    for bean in beans_labelled(processes, "waiter"):
        assert bean["state"] == "running" and bean["restarts"] == 0
        assert bean["core"] == "apps.pod_admin_beans.waiter"
        assert any("pod_admin_beans.py" in line and "in waiter" in line
                   for line in bean["stack"]), bean["stack"]
    broken = beans_labelled(processes, "broken")
    assert len(broken) == len(pids)
    for bean in broken:
        assert bean["state"] == "failed"
        assert bean["last_error"] == "ValueError: broken on purpose"
        assert "Traceback (most recent call last)" in bean["traceback"]
        assert 'raise ValueError("broken on purpose")' in bean["traceback"]
        assert bean["stack"] == []
    if model == "prefork":
        supervisor = next(p for p in processes if p["role"] == "supervisor")
        assert supervisor["pod"] is False and supervisor["beans"] == []

    # Add a bean: it runs in every serving process (each writes its pid).
    ticks = tmp_path / "ticks"
    added = act(server, "/pod", {"core": "apps.pod_admin_beans.ticker", "label": "ticker",
                                 "restart": "permanent", "path": str(ticks)})
    assert added.status_code == 200, added.text
    assert {p["pid"] for p in added.json()["processes"]} == pids

    def starts() -> list[str]:
        return [line for line in ticks.read_text().splitlines()
                if line.startswith("start")] if ticks.exists() else []

    wait_until(lambda: {int(line.split()[1]) for line in starts()} == pids,
               what="the added bean to start in every serving process", seen=starts)
    wait_until(lambda: all(b["state"] == "running"
                           for b in beans_labelled(pod_view(server), "ticker")),
               what="the ticker listed as running", seen=lambda: pod_view(server))

    # Restart it by label: a second run in each process, restarts 1.
    restarted = act(server, "/pod/restart", {"label": "ticker"})
    assert restarted.status_code == 200, restarted.text
    wait_until(lambda: len(starts()) == 2 * len(pids), what="a second start per process",
               seen=starts)
    tickers = beans_labelled(pod_view(server), "ticker")
    assert len(tickers) == len(pids)
    assert all(b["restarts"] == 1 and b["state"] == "running" for b in tickers), tickers

    # Cancel it: listed as cancelled, and it writes no more.
    cancelled = act(server, "/pod/cancel", {"label": "ticker"})
    assert cancelled.status_code == 200, cancelled.text
    assert all(b["state"] == "cancelled"
               for p in cancelled.json()["processes"] for b in p["beans"])
    tickers = beans_labelled(pod_view(server), "ticker")
    assert tickers and all(b["state"] == "cancelled" and b["stack"] == [] for b in tickers)
    size = ticks.stat().st_size
    pod_view(server)  # a round trip through every serving loop
    assert ticks.stat().st_size == size

    # Actions by id: in prefork the id needs the pid.
    pid = sorted(pids)[0]
    ident = next(b["id"] for b in pod_view(server, pid=pid)[0]["beans"]
                 if b["label"] == "ticker")
    if model == "prefork":
        refused = act(server, "/pod/restart", {"id": ident})
        assert refused.status_code == 400 and "pid" in refused.json()["error"]
    again = act(server, "/pod/restart", {"id": ident}, pid=pid)
    assert again.status_code == 200, again.text
    assert [p["pid"] for p in again.json()["processes"]] == [pid]
    assert again.json()["processes"][0]["beans"][0]["restarts"] == 2

    # Mistakes: a bad core (400, the config's line), an unknown label (404), the
    # read-only token (403).  None of them costs a process.
    bad = act(server, "/pod", {"core": "apps.pod_admin_beans.nope"})
    assert bad.status_code == 400
    assert bad.json()["error"] == ("bean core 'apps.pod_admin_beans.nope': module "
                                   "apps.pod_admin_beans has no attribute 'nope'")
    bad_kwarg = act(server, "/pod", {"core": "apps.pod_admin_beans.ticker"})
    assert bad_kwarg.status_code == 400
    assert "missing a required argument: 'path'" in bad_kwarg.json()["error"]
    unknown = act(server, "/pod/cancel", {"label": "ghost"})
    assert unknown.status_code == 404 and "'ghost'" in unknown.json()["error"]
    assert act(server, "/pod/restart", {"label": "waiter", "extra": 1}).status_code == 400
    for path, body in (("/pod", {"core": "apps.pod_admin_beans.waiter"}),
                       ("/pod/cancel", {"label": "waiter"}),
                       ("/pod/restart", {"label": "waiter"})):
        assert act(server, path, body, token="peek").status_code == 403
    assert server.admin("GET", "/pod").status_code == 401
    assert serving_pids(server) == pids
    assert all(b["state"] == "running" for b in beans_labelled(pod_view(server), "waiter"))

    # Every change is logged on qt_server with who made it.
    output = server.process.output
    assert "admin: pod add apps.pod_admin_beans.ticker label 'ticker' in pid" in output
    assert "admin: pod restart label 'ticker' in pid" in output
    assert f"admin: pod restart id {ident} in pid {pid} (by token admin" in output
    assert "admin: pod cancel label 'ticker' in pid" in output
    assert "Traceback" not in output.split("broken on purpose")[-1]


def test_a_bad_core_is_the_same_line_as_in_the_config(pod_server: Any) -> None:
    server = pod_server("async")
    bad = act(server, "/pod", {"core": "apps.pod_admin_beans.nope"})
    assert bad.status_code == 400
    result = run_qactuar("admin_app:app", "--app-dir", "apps", "--port", "0",
                         env={"QACTUAR_BEANS": '[{"core": "apps.pod_admin_beans.nope"}]'})
    assert bad.json()["error"] in assert_one_line_error(result)


def test_ctl_pod_commands(pod_server: Any, tmp_path: Path) -> None:
    server = pod_server("async")
    port = server.admin_url.rsplit(":", 1)[1]

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qactuar", "ctl", "--port", port,
                               "--token", "s3cret", "pod", *args], capture_output=True,
                              text=True, timeout=30, env=child_env())

    ticks = tmp_path / "ticks"
    added = ctl("add", f"apps.pod_admin_beans.ticker:path='{ticks}'", "--label", "t")
    assert added.returncode == 0, added.stderr
    wait_until(ticks.exists, what="the bean added by ctl to run")
    listed = json.loads(ctl("list").stdout)["processes"][0]["beans"]
    assert [b["label"] for b in listed] == ["waiter", "broken", "t"]
    restarted = json.loads(ctl("restart", "t").stdout)["processes"][0]["beans"][0]
    assert restarted["restarts"] == 1
    ident = str(restarted["id"])
    assert json.loads(ctl("cancel", ident).stdout)["processes"][0]["beans"][0]["state"] \
        == "cancelled"
    missing = ctl("cancel", "ghost")
    assert missing.returncode == 1 and "404" in missing.stderr and "'ghost'" in missing.stderr


def test_postfork_parent_beans_run_in_their_own_thread_loop(pod_server: Any,
                                                             tmp_path: Path) -> None:
    """The parent's pod runs in a thread with its own loop: every question crosses over."""
    server = pod_server("postfork")
    wait_until(lambda: beans_labelled(pod_view(server), "waiter")[0]["stack"] != [],
               what="the parent's waiter bean", seen=lambda: pod_view(server))
    (parent,) = pod_view(server)
    assert parent["pid"] == server.process.proc.pid and parent["pod"] is True
    ticks = tmp_path / "ticks"
    added = act(server, "/pod", {"core": "apps.pod_admin_beans.ticker", "label": "ticker",
                                 "path": str(ticks)})
    assert added.status_code == 200, added.text
    wait_until(lambda: ticks.exists() and f"start {parent['pid']}" in ticks.read_text(),
               what="the added bean to run in the parent")
    restarted = act(server, "/pod/restart", {"label": "ticker"}, pid=parent["pid"])
    assert restarted.json()["processes"][0]["beans"][0]["restarts"] == 1
    wait_until(lambda: ticks.read_text().count("start") == 2, what="the second run")
    cancelled = act(server, "/pod/cancel", {"label": "ticker"})
    assert cancelled.json()["processes"][0]["beans"][0]["state"] == "cancelled"
    assert act(server, "/pod/cancel", {"label": "ghost"}).status_code == 404
    assert act(server, "/pod", {"core": "apps.pod_admin_beans.nope"}).status_code == 400
