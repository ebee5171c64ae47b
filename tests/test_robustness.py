"""Hostile and unusual clients and apps: early answers, trailers, pipelines that are never read.

Each test talks to a real server over raw sockets and fails while its bug is
present.  The app is `apps.robustness_app` (paths it does not know go to
`apps.basic`) or `apps.misbehaving` where a marked slow request is needed.
"""

from __future__ import annotations

import select
import socket
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import (
    ServerFactory,
    ServerProcess,
    file_lines,
    read_response,
    recv_until_closed,
    wait_until,
)

# The servers of every test here run under each process model (conftest).
pytestmark = pytest.mark.all_models

ROBUSTNESS_APP = "apps.robustness_app:app"




def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


CHUNKED_POST = (b"POST /ignore-body HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


# -- a bad body after the app answered early ------------------------------------------


def test_bad_chunk_after_an_early_answer_prints_no_traceback(
        start_server: ServerFactory) -> None:
    """http1.py `_reject`: `self._queue[0]` on an empty queue raises IndexError.

    The app answered before the body was in (its request was popped from the
    queue, but `_parsing` still points at it); a malformed chunk that follows
    reaches `_reject`, which indexes the empty queue.  The IndexError escapes
    `data_received` into the event loop, which prints a traceback.
    """
    server = start_server(ROBUSTNESS_APP)
    with server.connect() as sock:
        sock.sendall(CHUNKED_POST + b"5\r\nhello\r\n")
        status, _, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK" and body == b"ignored"
        sock.sendall(b"zz\r\nnot a chunk\r\n")
        recv_until_closed(sock)
    assert server.stop() == 0
    assert "Traceback" not in server.output, server.output


def test_body_over_the_limit_after_an_early_answer_prints_no_traceback(
        start_server: ServerFactory) -> None:
    """The same IndexError, reached through MAX_BODY_SIZE (413) on a chunked body."""
    server = start_server(ROBUSTNESS_APP, "--max-body-size", "100")
    with server.connect() as sock:
        sock.sendall(CHUNKED_POST + b"5\r\nhello\r\n")
        status, _, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK" and body == b"ignored"
        sock.sendall(b"c8\r\n" + b"x" * 200 + b"\r\n")
        recv_until_closed(sock)
    assert server.stop() == 0
    assert "Traceback" not in server.output, server.output


# -- a connection whose body stalls after the answer is never closed -------------------


def test_stalled_body_after_an_early_answer_is_closed(start_server: ServerFactory) -> None:
    """http1.py `response_done`: no timer runs once the answer is out but the body is not.

    The request is popped, `message_complete` is False, so neither the
    keep-alive timer nor any other is set; REQUEST_TIMEOUT was cancelled when
    the response started.  A client that declares a body and never sends it
    holds the connection (and its file descriptor) forever.
    """
    server = start_server(ROBUSTNESS_APP, "--keep-alive-timeout", "0.5", "--header-timeout", "0.5",
                          "--request-timeout", "0.5")
    with server.connect() as sock:
        sock.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                     b"0123456789")
        status, _, body = read_response(sock)
        assert status == b"HTTP/1.1 200 OK" and body == b"ignored"
        recv_until_closed(sock, timeout=5)  # socket.timeout: the server never closed it


# -- request trailers ------------------------------------------------------------------


def test_request_trailers_are_not_merged_into_the_scope_headers(
        basic_server: ServerProcess) -> None:
    """http1.py `on_header`: httptools reports trailer fields through `on_header` too.

    They are appended to `self._headers`, the very list the app already holds
    as `scope["headers"]`: a client can add a second Host (or any field) to a
    request head after the fact (RFC 9110 6.5.1: trailers must not be merged
    into the header section unless the field is known to be safe).
    """
    with basic_server.connect() as sock:
        sock.sendall(b"POST /scope HTTP/1.1\r\nHost: good\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nHost: evil\r\nX-Trailer: yes\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    assert b"evil" not in body and b"x-trailer" not in body.lower(), body


def test_unfinished_trailer_section_is_bounded(start_server: ServerFactory) -> None:
    """http1.py: an unfinished trailer field is buffered by httptools without limit.

    `_count_unfinished_head` only counts while `_in_head`; the trailer section
    comes after the head, so a trailer value that never ends is accumulated
    (with a quadratic `bytes +=` in httptools) for as long as the client sends.
    With the app already answered there is no timer either.
    """
    server = start_server(ROBUSTNESS_APP, "--max-header-size", "1000")
    sent = 0
    limit = 32 * 1024 * 1024
    piece = b"a" * 65536
    with server.connect(timeout=10) as sock:
        sock.sendall(CHUNKED_POST + b"5\r\nhello\r\n0\r\nX-Endless: ")
        status, _, _ = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        try:
            while sent < limit:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    assert sent < limit, f"the server read a {sent}-byte trailer field"


# -- pipelining and back-pressure ------------------------------------------------------


def test_pipelining_client_that_never_reads_does_not_grow_memory(
        start_server: ServerFactory) -> None:
    """http1.py `response_done` resumes reading after every answer, whatever the queue.

    With http_stream.py `send()` not waiting for writability before a final
    body, each pipelined request is answered at once into the transport's
    buffer even though the client reads nothing, and every answer resumes
    reading, which parses more pipelined requests.  Memory grows by the size
    of every answer for as long as the client keeps sending.
    """
    server = start_server(ROBUSTNESS_APP)
    request = b"GET /sized?n=65536 HTTP/1.1\r\nHost: x\r\n\r\n"
    batch = request * 100
    pid = server.proc.pid
    baseline = rss_kib(pid)
    growth_limit = 300 * 1024  # KiB; a bounded server holds a few MB of answers
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect((server.host, server.port))
    sock.setblocking(False)
    growth = 0
    try:
        while True:
            growth = rss_kib(pid) - baseline
            if growth > growth_limit:
                break
            _, writable, _ = select.select([], [sock], [], 3)
            if not writable:
                break  # the server stopped reading: back-pressure works
            try:
                sock.send(batch)
            except BlockingIOError:
                continue
    finally:
        sock.close()
        server.proc.kill()
    assert growth <= growth_limit, f"server memory grew by {growth} KiB"


def test_header_timeout_does_not_run_while_the_server_holds_reading(
        start_server: ServerFactory, tmp_path: Path) -> None:
    """http1.py `on_message_begin` starts HEADER_TIMEOUT even when the server paused reading.

    Two complete pipelined requests behind a slow one pause reading
    (`on_message_complete`); a third head that was only partly in that read
    starts the header timer, but its rest sits unread in the kernel because the
    server itself stopped reading.  The timer fires and the client, who sent
    everything at once, gets 408 for a request it finished in time.
    """
    server = start_server("apps.misbehaving:app", "--header-timeout", "0.5",
                          "--request-timeout", "10")
    started = tmp_path / "started"
    slow = f"GET /marked-sleep?s=1.5&started={quote(str(started))} HTTP/1.1\r\nHost: x\r\n\r\n"
    with server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(slow.encode() + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                     + b"GET /hello HTTP/1.1\r\nHo")
        wait_until(started.exists, what="the slow request to start")
        sock.sendall(b"st: x\r\n\r\n")
        statuses = [read_response(sock)[0] for _ in range(3)]
    assert statuses == [b"HTTP/1.1 200 OK"] * 3, statuses


# -- the ASGI cycle --------------------------------------------------------------------


def test_every_concurrent_receive_is_told_of_the_disconnect(
        start_server: ServerFactory, tmp_path: Path) -> None:
    """http_stream.py `receive()` keeps one `_waiter`: a second caller replaces the first.

    The first caller's future is then never resolved (and the second
    caller's `finally` clears the slot), so it never hears `http.disconnect`
    and its task never ends.  Two concurrent receive() calls are ordinary
    (a disconnect watcher beside a handler that checks is_disconnected()).
    """
    server = start_server(ROBUSTNESS_APP, "--request-timeout", "0")
    out = tmp_path / "messages"
    sock = server.connect()
    sock.sendall(f"GET /two-receivers?out={quote(str(out))} HTTP/1.1\r\nHost: x\r\n\r\n"
                 .encode())
    wait_until(lambda: "ready" in file_lines(out), what="both receive() calls to wait")
    sock.close()
    try:
        wait_until(lambda: len(file_lines(out)) >= 3, timeout=5,
                   what="both receive() calls to return")
    finally:
        messages = file_lines(out)
    assert messages == ["ready", "http.disconnect", "http.disconnect"], messages


def test_app_raising_system_exit_does_not_stop_the_server(start_server: ServerFactory) -> None:
    """http_stream.py `_run` re-raises BaseException from the app after logging it.

    A SystemExit (or KeyboardInterrupt) raised in a Task is re-raised by
    asyncio out of the event loop, so one request that hits a stray
    `sys.exit()` ends the whole server without a graceful shutdown, contrary
    to "a worker never dies because of one request".
    """
    server = start_server(ROBUSTNESS_APP)
    with server.connect() as sock:
        sock.sendall(b"GET /system-exit HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_response(sock)
    assert status.startswith(b"HTTP/1.1 500 "), status
    # A server that still runs stops gracefully on SIGTERM (exit status 0); one
    # that the SystemExit is ending exits with its code (3) instead.
    assert server.stop() == 0, server.output
    assert "Shutting down" in server.output


def _collect_garbage(server: ServerProcess) -> int:
    with server.connect() as sock:
        sock.sendall(b"GET /gc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    return int(body)


def test_closed_connections_are_freed_without_the_garbage_collector(
        start_server: ServerFactory) -> None:
    # A connection's objects caught in a reference cycle (the protocol and its
    # parser, a parser callback's exception and its traceback) would each wait
    # for the collector: memory and collector pauses growing with the
    # connection rate.  Every one of these connections ends its own way.
    server = start_server(ROBUSTNESS_APP)
    # Start-up's own cycles (imports, lifespan) were collected before serving, in
    # whichever worker answers (prefork workers each collect before they listen).
    assert _collect_garbage(server) == 0
    endings = [b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
               b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",  # the client closes
               b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",  # 400
               b"GET /hello HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"]  # 431
    for _ in range(5):
        for request in endings:
            with server.connect() as sock:
                sock.sendall(request)
                read_response(sock)
    assert _collect_garbage(server) == 0
