"""The prefork model with real processes and real signals: crash and hang
replacement, MAX_REQUESTS recycling, SIGHUP reload under load, SIGTERM drain,
SIGTTIN/SIGTTOU, lifespan per worker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from apps.lifespan_apps import EVENTS_VAR
from conftest import (
    ServerFactory,
    ServerProcess,
    child_env,
    fetch,
    file_lines,
    read_response,
    recv_until_closed,
    run_qactuar,
    wait_until,
)

APP = "apps.process_app:app"
PREFORK = ("--model", "prefork")
READY = re.compile(r"Listening on \S+ \(prefork model, \w+ loop, pid (\d+)\)")


def ready_pids(server: ServerProcess) -> list[int]:
    """Pids of the workers that have logged that they listen, in order."""
    return [int(m.group(1)) for line in server.lines if (m := READY.search(line))]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


class Load:
    """Client threads sending requests on new connections until stopped."""

    def __init__(self, server: ServerProcess, threads: int = 2, path: str = "/pid") -> None:
        self.server = server
        self.path = path
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[int] = []  # pid that answered each successful request
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                status, body = fetch(self.server, self.path)
                outcome = int(body) if status == 200 else None
                error = f"status {status}"
            except (OSError, ValueError) as exc:
                outcome, error = None, repr(exc)
            with self.lock:
                if outcome is None:
                    self.failures.append(error)
                else:
                    self.answers.append(outcome)

    def count(self) -> int:
        with self.lock:
            return len(self.answers)

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(15)


def test_a_killed_worker_is_replaced_while_the_others_keep_serving(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "2", "--no-access-log")
    wait_until(lambda: len(ready_pids(server)) == 2, what="two workers")
    victim, survivor = ready_pids(server)
    load = Load(server)
    try:
        wait_until(lambda: load.count() >= 20, what="requests before the kill")
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log(rf"Worker pid {victim} was killed by signal SIGKILL "
                            r"unexpectedly; replacing it")
        wait_until(lambda: len(ready_pids(server)) == 3, what="a replacement worker")
        replacement = ready_pids(server)[2]
        before = load.count()
        wait_until(lambda: replacement in load.answers[before:] and
                   survivor in load.answers[before:], what="answers from both workers")
        # Only requests the killed worker had already accepted can fail: at most
        # one per client thread, and none once it is gone.
        failed = len(load.failures)
        assert failed <= len(load.threads), load.failures
        settled = load.count()
        wait_until(lambda: load.count() >= settled + 30, what="requests after the kill")
    finally:
        load.stop()
    assert len(load.failures) == failed, load.failures
    assert victim not in load.answers[before:]
    assert server.stop() == 0


def test_sighup_replaces_every_worker_without_a_failed_request(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "2", "--no-access-log")
    wait_until(lambda: len(ready_pids(server)) == 2, what="two workers")
    old = set(ready_pids(server))
    load = Load(server, threads=3)
    try:
        wait_until(lambda: load.count() >= 20, what="requests before the reload")
        server.send_signal(signal.SIGHUP)
        server.wait_for_log(r"Reload finished: 2 new worker\(s\) serving, 2 old worker\(s\) "
                            r"draining", timeout=20)
        new = set(ready_pids(server)) - old
        assert len(new) == 2
        for pid in old:
            server.wait_for_log(rf"Worker pid {pid} stopped \(exited with code 0\)")
        # The new workers listened before the old ones were told to stop.
        lines = server.lines
        finished = next(i for i, line in enumerate(lines) if "Reload finished" in line)
        assert all(i < finished for i, line in enumerate(lines)
                   if (m := READY.search(line)) and int(m.group(1)) in new)
        assert all(i > finished for i, line in enumerate(lines)
                   if re.search(r"Worker pid \d+ stopped", line))
        # Each load thread has one request in flight: an old worker's answer received
        # before it stopped may still be recorded after this count, one per thread at most.
        after = load.count() + 3
        wait_until(lambda: load.count() >= after + 20, what="requests after the reload")
    finally:
        load.stop()
    assert load.failures == []
    assert set(load.answers[after:]) <= new
    assert server.stop() == 0


def test_sigterm_lets_slow_requests_finish_refuses_new_ones_and_exits_0(
        start_server: ServerFactory, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server = start_server(APP, *PREFORK, "--workers", "2", env={EVENTS_VAR: str(events)})
    wait_until(lambda: len(ready_pids(server)) == 2, what="two workers")
    results: list[tuple[int, bytes]] = []
    clients = [threading.Thread(target=lambda: results.append(fetch(server, "/slow?s=2")))
               for _ in range(2)]
    for client in clients:
        client.start()
    wait_until(lambda: sum(e.startswith("start /slow") for e in file_lines(events)) == 2,
               what="both slow requests in the app")
    server.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            socket.create_connection((server.host, server.port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    wait_until(refused, what="new connections refused")
    for client in clients:
        client.join(15)
    assert results == [(200, b"slow done"), (200, b"slow done")]
    assert server.stop() == 0
    assert server.proc.returncode == 0


def test_sigterm_kills_a_worker_still_busy_after_the_shutdown_timeout(
        start_server: ServerFactory, tmp_path: Path) -> None:
    # A worker whose app blocks its event loop cannot drain or time itself out:
    # the supervisor kills it and still exits 0.
    events = tmp_path / "events.txt"
    server = start_server(APP, *PREFORK, "--workers", "1", "--shutdown-timeout", "0.5",
                          env={EVENTS_VAR: str(events)})
    wait_until(lambda: len(ready_pids(server)) == 1, what="the worker")
    (worker,) = ready_pids(server)
    with server.connect() as sock:
        sock.sendall(b"GET /block?s=60 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(lambda: any(e.startswith("start /block") for e in file_lines(events)),
                   what="the blocking request in the app")
        server.send_signal(signal.SIGTERM)
        server.wait_for_log(rf"Worker pid {worker} stopped \(was killed by signal SIGKILL\)",
                            timeout=20)
        assert recv_until_closed(sock, timeout=10) == b""
    assert server.stop() == 0


def test_a_hung_worker_is_killed_and_replaced(start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "1", "--worker-timeout", "1",
                          "--check-process-interval", "0.2")
    wait_until(lambda: len(ready_pids(server)) == 1, what="the worker")
    (hung,) = ready_pids(server)
    sock = server.connect()
    sock.sendall(b"GET /block?s=60 HTTP/1.1\r\nHost: t\r\n\r\n")
    server.wait_for_log(rf"Worker pid {hung} is hung: its event loop has not run for "
                        r"[\d.]+s \(WORKER_TIMEOUT 1s\); killing it", timeout=15)
    server.wait_for_log(rf"Worker pid {hung} was killed by signal SIG(ABRT|KILL) after hanging")
    wait_until(lambda: len(ready_pids(server)) == 2, what="a replacement worker")
    assert fetch(server, "/pid") == (200, str(ready_pids(server)[1]).encode())
    sock.close()
    assert server.stop() == 0


def test_max_requests_recycles_workers_without_failing_a_request(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "1", "--max-requests", "3")
    wait_until(lambda: len(ready_pids(server)) == 1, what="the worker")
    answers = [fetch(server, "/pid") for _ in range(8)]
    assert all(status == 200 for status, _ in answers), answers
    pids = [int(body) for _, body in answers]
    # Served in runs of exactly three per worker: 3 + 3 + 2.
    assert [pids.count(pid) for pid in dict.fromkeys(pids)] == [3, 3, 2], pids
    server.wait_for_log(rf"Worker pid {pids[0]} served 3 requests \(MAX_REQUESTS\): recycling")
    server.wait_for_log(rf"Worker pid {pids[0]} recycled \(MAX_REQUESTS\); replacing it")
    assert server.stop() == 0


def test_max_requests_jitter_gives_each_worker_its_own_limit(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "1", "--max-requests", "1",
                          "--max-requests-jitter", "9", "--no-access-log")
    pids: list[int] = []

    def five_workers_recycled() -> bool:
        status, body = fetch(server, "/pid")
        assert status == 200, body
        pids.append(int(body))
        return len(set(pids)) > 5

    wait_until(five_workers_recycled, timeout=60, what="five workers to be recycled")
    runs = [pids.count(pid) for pid in dict.fromkeys(pids)][:-1]
    assert all(1 <= run <= 10 for run in runs), runs
    # Each worker draws its own limit: five equal ones would be a 1 in 10,000 chance.
    assert len(set(runs)) > 1, runs
    assert server.stop() == 0


def test_sigttin_adds_a_worker_and_sigttou_removes_one(start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "1")
    wait_until(lambda: len(ready_pids(server)) == 1, what="the worker")
    server.send_signal(signal.SIGTTIN)
    server.wait_for_log(r"Received SIGTTIN: now 2 worker\(s\)")
    wait_until(lambda: len(ready_pids(server)) == 2, what="a second worker")
    newest = ready_pids(server)[1]
    server.send_signal(signal.SIGTTOU)
    server.wait_for_log(rf"Received SIGTTOU: now 1 worker\(s\); stopping worker pid {newest}")
    server.wait_for_log(rf"Worker pid {newest} stopped \(exited with code 0\)")
    assert fetch(server, "/pid") == (200, str(ready_pids(server)[0]).encode())
    server.send_signal(signal.SIGTTOU)
    server.wait_for_log(r"Received SIGTTOU: keeping the last worker")
    assert server.stop() == 0


def test_sigttou_while_every_worker_waits_out_its_back_off(start_server: ServerFactory) -> None:
    # A crash loop has left no worker running (the next starts after its
    # back-off): SIGTTOU has no worker to stop and only lowers the target
    # (it used to crash the supervisor looking for one).
    server = start_server(APP, *PREFORK, "--workers", "2")
    wait_until(lambda: len(ready_pids(server)) == 2, what="two workers")
    first, second = ready_pids(server)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(ready_pids(server)) == 3, what="the first replacement")
    os.kill(second, signal.SIGKILL)
    os.kill(ready_pids(server)[2], signal.SIGKILL)
    server.wait_for_log(r"replacing it in 1s \(it keeps dying\)")
    server.send_signal(signal.SIGTTOU)
    server.wait_for_log(r"Received SIGTTOU: now 1 worker\(s\)$")
    wait_until(lambda: len(ready_pids(server)) == 4, what="one worker after the back-off")
    assert fetch(server, "/pid") == (200, str(ready_pids(server)[3]).encode())
    assert sum("spawned" in line for line in server.lines) == 4
    assert server.stop() == 0


def test_each_worker_runs_its_own_lifespan(start_server: ServerFactory, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server = start_server(APP, *PREFORK, "--workers", "2", env={EVENTS_VAR: str(events)})
    wait_until(lambda: len(ready_pids(server)) == 2, what="two workers")
    workers = sorted(ready_pids(server))
    startups = sorted(int(e.split()[1]) for e in file_lines(events) if e.startswith("startup"))
    assert startups == workers
    status, body = fetch(server, "/state")
    assert status == 200 and int(body) in workers  # a worker's own startup state
    assert server.stop() == 0
    shutdowns = sorted(int(e.split()[1]) for e in file_lines(events)
                       if e.startswith("shutdown"))
    assert shutdowns == workers


def test_failed_startup_in_the_workers_exits_3(tmp_path: Path) -> None:
    result = run_qactuar("apps.lifespan_apps:failing_startup_app", *PREFORK, "--workers", "2",
                         "--host", "127.0.0.1", "--port", "0", env=child_env())
    assert result.returncode == 3, result.stdout + result.stderr
    assert "failed application startup" in result.stdout


def test_a_worker_that_keeps_dying_is_restarted_with_back_off(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "1", "--check-process-interval", "0.2")
    wait_until(lambda: len(ready_pids(server)) == 1, what="the worker")
    for attempt in range(3):
        with pytest.raises((ConnectionError, OSError)), server.connect() as sock:
            sock.sendall(b"GET /exit HTTP/1.1\r\nHost: t\r\n\r\n")
            read_response(sock)  # the worker ends before it answers
        wait_until(lambda n=attempt: len(ready_pids(server)) == n + 2, what="a replacement")
    # The first replacement is immediate; the next ones wait longer each time.
    server.wait_for_log(r"exited with code 1 unexpectedly; replacing it in 0\.5s "
                        r"\(it keeps dying\)")
    server.wait_for_log(r"exited with code 1 unexpectedly; replacing it in 1s "
                        r"\(it keeps dying\)")
    assert server.stop() == 0


@pytest.mark.parametrize("model", ["prefork", "postfork"])
def test_the_process_models_refuse_run_off_the_main_thread(tmp_path: Path, model: str) -> None:
    script = tmp_path / "in_thread.py"
    script.write_text(
        "import threading\nimport qactuar\n"
        f"conf = qactuar.Config(ASYNCRONOUS_MODEL={model!r}, HOST='127.0.0.1', PORT=0)\n"
        "thread = threading.Thread(target=qactuar.run, kwargs={'app': 'apps.basic:app', "
        "'conf': conf})\nthread.start()\nthread.join()\n")
    result = subprocess.run([sys.executable, str(script)], env=child_env(), capture_output=True,
                            text=True, timeout=30, cwd=Path(__file__).parent)
    assert result.stderr.strip() == (f"qactuar: error: the {model} model runs its processes "
                                     "with signals: call run() from the main thread")
    assert "Listening" not in result.stdout


def test_workers_left_behind_by_a_killed_supervisor_exit(start_server: ServerFactory) -> None:
    server = start_server(APP, *PREFORK, "--workers", "2")
    wait_until(lambda: len(ready_pids(server)) == 2, what="two workers")
    workers = ready_pids(server)
    server.proc.kill()
    server.proc.wait()
    wait_until(lambda: not any(alive(pid) and not zombie_or_gone(pid) for pid in workers),
               timeout=15, what="orphaned workers to exit")
