"""The postfork model with real processes: one child per connection, crash
isolation, MAX_PROCESSES queueing, REQUEST_TIMEOUT kills, reaping, lifespan
once in the parent, SIGTERM drain, a WebSocket's child exiting when it closes."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from apps.lifespan_apps import EVENTS_VAR
from conftest import (
    ServerFactory,
    ServerProcess,
    fetch,
    file_lines,
    read_response,
    recv_until_closed,
    wait_until,
)
from ws_client import RawWebSocket

APP = "apps.process_app:app"
POSTFORK = ("--model", "postfork")
CRASH_BODY = b"Internal Server Error: the process serving this request ended\n"


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, state letter) of every child process of `pid`, zombies included."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append((int(entry.name), fields[0]))
    return found


def in_background(server: ServerProcess, path: str) -> tuple[threading.Thread,
                                                              list[tuple[int, bytes]]]:
    result: list[tuple[int, bytes]] = []
    thread = threading.Thread(target=lambda: result.append(fetch(server, path, timeout=20)))
    thread.start()
    return thread, result


def test_each_connection_gets_its_own_process_which_serves_its_keep_alive_requests(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *POSTFORK)
    with server.connect() as sock:
        pids = []
        for _ in range(3):
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, body = read_response(sock)
            assert status.startswith(b"HTTP/1.1 200")
            pids.append(int(body))
    assert len(set(pids)) == 1  # keep-alive: one child for the whole connection
    other = int(fetch(server, "/pid")[1])
    assert other != pids[0] and server.proc.pid not in (other, pids[0])
    wait_until(lambda: children(server.proc.pid) == [], what="children to exit")
    assert server.stop() == 0


def test_a_crashing_request_does_not_affect_a_concurrent_one(
        start_server: ServerFactory, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server = start_server(APP, *POSTFORK, env={EVENTS_VAR: str(events)})
    slow, result = in_background(server, "/slow?s=1.5")
    wait_until(lambda: any(e.startswith("start /slow") for e in file_lines(events)),
               what="the slow request in the app")
    # An app that ends its process, and a fault in a C extension: their own
    # clients get a 500 from the parent; the concurrent request is untouched.
    assert fetch(server, "/exit") == (500, CRASH_BODY)
    server.wait_for_log(r"Child pid \d+ \(client [\d.:]+\) exited with code 1; answered 500")
    assert fetch(server, "/segfault") == (500, CRASH_BODY)
    server.wait_for_log(r"Child pid \d+ \(client [\d.:]+\) was killed by signal SIGSEGV; "
                        r"answered 500")
    slow.join(20)
    assert result == [(200, b"slow done")]
    assert fetch(server, "/pid")[0] == 200
    assert server.stop() == 0


def test_max_processes_makes_connections_wait_instead_of_dropping_them(
        start_server: ServerFactory, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server = start_server(APP, *POSTFORK, "--max-processes", "1",
                          env={EVENTS_VAR: str(events)})
    first, first_result = in_background(server, "/slow?s=1")
    wait_until(lambda: any(e.startswith("start /slow") for e in file_lines(events)),
               what="the first request in the app")
    second, second_result = in_background(server, "/pid")
    first.join(20)
    second.join(20)
    assert first_result == [(200, b"slow done")]
    assert second_result and second_result[0][0] == 200
    lines = file_lines(events)
    # The second connection was served only once the first child had finished.
    assert lines.index(next(e for e in lines if e.startswith("end /slow"))) < lines.index(
        next(e for e in lines if e.startswith("start /pid")))
    assert server.stop() == 0


def test_a_child_blocking_past_request_timeout_is_killed_and_its_client_gets_504(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *POSTFORK, "--request-timeout", "1",
                          "--check-process-interval", "0.2")
    status, body = fetch(server, "/block?s=60", timeout=20)
    assert (status, body) == (504, b"Gateway Timeout: the application did not answer in time\n")
    server.wait_for_log(r"Child pid \d+ \(client [\d.:]+\) did not answer within "
                        r"REQUEST_TIMEOUT 1s: killing it")
    wait_until(lambda: children(server.proc.pid) == [], what="the killed child to be reaped")
    assert server.stop() == 0


def test_a_child_hung_after_starting_its_response_is_killed_without_a_second_answer(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *POSTFORK, "--worker-timeout", "1",
                          "--check-process-interval", "0.2")
    with server.connect(timeout=20) as sock:
        sock.sendall(b"GET /start-then-block HTTP/1.1\r\nHost: t\r\n\r\n")
        received = recv_until_closed(sock, timeout=20)
    # The started response is cut (no final chunk), and nothing is appended to it.
    assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received
    assert received.endswith(b"7\r\npartial\r\n"), received
    server.wait_for_log(r"Child pid \d+ \(client [\d.:]+\) is hung: its event loop has not "
                        r"run for [\d.]+s \(WORKER_TIMEOUT 1s\); killing it")
    server.wait_for_log(r"Child pid \d+ \(client [\d.:]+\) was killed by signal "
                        r"SIG(ABRT|KILL)$")
    assert server.stop() == 0


def test_no_zombies_are_left_after_many_connections_and_crashes(
        start_server: ServerFactory) -> None:
    server = start_server(APP, *POSTFORK, "--no-access-log")
    threads = [in_background(server, path)[0]
               for path in ["/pid", "/exit", "/slow?s=0.2", "/segfault"] * 5]
    for thread in threads:
        thread.join(20)
    wait_until(lambda: children(server.proc.pid) == [], timeout=15,
               what="every child to be reaped")
    assert server.stop() == 0


def test_lifespan_runs_once_in_the_parent_and_children_inherit_its_state(
        start_server: ServerFactory, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server = start_server(APP, *POSTFORK, env={EVENTS_VAR: str(events)})
    parent = server.proc.pid
    for _ in range(3):
        assert fetch(server, "/state") == (200, str(parent).encode())
    assert server.stop() == 0
    lifespan = [e for e in file_lines(events) if e.split()[0] in ("startup", "shutdown")]
    assert lifespan == [f"startup {parent}", f"shutdown {parent}"]


def test_sigterm_lets_a_slow_request_finish_and_exits_0(start_server: ServerFactory,
                                                        tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server = start_server(APP, *POSTFORK, env={EVENTS_VAR: str(events)})
    slow, result = in_background(server, "/slow?s=1.5")
    wait_until(lambda: any(e.startswith("start /slow") for e in file_lines(events)),
               what="the slow request in the app")
    server.send_signal(signal.SIGTERM)
    server.wait_for_log(r"Shutting down: no new connections, waiting up to 30s for 1 child")
    slow.join(20)
    assert result == [(200, b"slow done")]
    assert server.stop() == 0


def test_children_of_a_killed_parent_exit(start_server: ServerFactory,
                                          tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    # Kept alive far longer than the test: only the orphan check can end the child.
    server = start_server(APP, *POSTFORK, "--keep-alive-timeout", "120",
                          env={EVENTS_VAR: str(events)})
    sock = server.connect()
    sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
    _, _, body = read_response(sock)
    child = int(body)
    server.proc.kill()
    server.proc.wait()

    def gone() -> bool:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        return state == "Z"

    wait_until(gone, timeout=15, what="the orphaned child to exit")
    sock.close()


def test_a_websocket_child_exits_when_its_connection_closes(start_server: ServerFactory,
                                                            tmp_path: Path) -> None:
    # After the upgrade the child's connection belongs to the WebSocket protocol;
    # the child must still hear it close, or it lingers and the parent's copy of
    # the socket keeps the TCP connection open after the close handshake.
    server = start_server("apps.ws_app:app", *POSTFORK,
                          env={EVENTS_VAR: str(tmp_path / "events.txt")})
    ws = RawWebSocket.connect(server, "/close?code=4000&reason=bye")
    assert ws.accepted
    ws.expect_close(4000, answer=True)  # and then the server closes TCP
    ws.close()
    wait_until(lambda: children(server.proc.pid) == [], what="the WebSocket's child to exit")
    assert server.stop() == 0, server.output


def test_a_crashed_http2_child_gets_its_connection_closed_not_an_http1_answer(
        start_server: ServerFactory) -> None:
    import h2.config
    import h2.connection

    server = start_server(APP, *POSTFORK)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, [(b":method", b"GET"), (b":path", b"/exit"), (b":scheme", b"http"),
                          (b":authority", b"t")], end_stream=True)
    with server.connect(timeout=20) as sock:  # h2c with prior knowledge
        sock.sendall(conn.data_to_send())
        received = recv_until_closed(sock, timeout=20)
    # The child's SETTINGS (or, where the app's first step runs eagerly, Python 3.12+,
    # nothing: the app ends the process before the child's first write), then the
    # connection ends: no HTTP/1.1 500 appended.
    assert received == b"" or received.startswith(b"\x00\x00"), received[:40]
    assert b"HTTP/1.1" not in received, received
    server.wait_for_log(r"Child pid \d+ \(client [\d.:]+\) exited with code 1$")
    assert fetch(server, "/pid")[0] == 200  # the server goes on
    assert server.stop() == 0


def test_children_import_nothing_for_their_connection(start_server: ServerFactory,
                                                      tmp_path: Path) -> None:
    # Whatever a child imports, it imports again for every connection (the
    # websockets package alone cost some 30 ms each): the parent imports it
    # once before it forks. -X importtime prints a line for every import.
    server = start_server("apps.ws_app:app", *POSTFORK, "--no-access-log",
                          env={"PYTHONPROFILEIMPORTTIME": "1",
                               EVENTS_VAR: str(tmp_path / "events.txt")})
    listening = next(i for i, line in enumerate(server.lines) if "Listening on" in line)
    assert fetch(server, "/plain")[0] == 200
    ws = RawWebSocket.connect(server, "/close?code=4000&reason=bye")
    assert ws.accepted
    ws.expect_close(4000, answer=True)
    ws.close()
    wait_until(lambda: children(server.proc.pid) == [], what="the children to exit")
    assert server.stop() == 0
    imported = [line for line in server.lines[listening:] if line.startswith("import time:")]
    assert imported == [], imported
