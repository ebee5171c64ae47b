"""docs/proxies.md and docs/production.md: every command line they show, run as written
(on a free port), doing what the page says; the log lines and JSON they show are the
server's own."""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
from pathlib import Path

import httpx

from conftest import LISTENING, child_env, read_response, recv_until_closed, run_to_exit
from docs_commands import app_module, lines_of, serve_line
from docs_examples import code_blocks

SCOPE_APP = """\
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def get_json(port: int, raw: bytes) -> dict[str, object]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        status, _headers, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    return json.loads(body)


# -- proxies.md ------------------------------------------------------------------------------


def test_proxies_page_commands(tmp_path: Path) -> None:
    (tmp_path / "web.py").write_text(SCOPE_APP)
    allow, proxy_protocol = (line for block in code_blocks("proxies.md", "bash")
                             for line in lines_of(block))
    server = serve_line(allow, tmp_path)
    try:
        seen = get_json(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                     b"X-Forwarded-For: 203.0.113.5, 10.2.3.4\r\n"
                                     b"X-Forwarded-Proto: https\r\n\r\n")
        assert seen == {"client": ["203.0.113.5", 0], "scheme": "https"}
    finally:
        assert server.stop() == 0
    server = serve_line(proxy_protocol, tmp_path)
    try:
        seen = get_json(server.port, b"PROXY TCP4 198.51.100.1 10.0.0.1 40000 443\r\n"
                                     b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert seen["client"] == ["198.51.100.1", 40000]
        # The refusal the page shows, for a peer outside FORWARDED_ALLOW_IPS.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                      source_address=("127.0.0.2", 0)) as sock:
            sock.sendall(b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n")
            assert recv_until_closed(sock) == b""
        (shown,) = code_blocks("proxies.md", "text")
        pattern = re.escape(shown.strip()).replace(re.escape("192.0.2.7:50122"),
                                                   r"127\.0\.0\.2:\d+")
        server.wait_for_log(pattern + "$")
    finally:
        assert server.stop() == 0


# -- production.md ---------------------------------------------------------------------------


def production_lines() -> list[str]:
    return [line for block in code_blocks("production.md", "bash") for line in lines_of(block)]


def test_sighup_command_serves_the_edited_code(tmp_path: Path) -> None:
    prefork = production_lines()[0]
    app_module(tmp_path / "web.py", "first")
    server = serve_line(prefork, tmp_path, PYTHONDONTWRITEBYTECODE="1")
    try:
        server.wait_for_log(r"App code: web \(.*web\.py, modified ")
        server.wait_for_log(r"starting 2 worker\(s\)")
        app_module(tmp_path / "web.py", "second edit")
        server.send_signal(signal.SIGHUP)
        server.wait_for_log(r"Received SIGHUP: imported the app afresh: web \(")
        server.wait_for_log(r"Reload finished: 2 new worker\(s\) serving", timeout=20)
        assert httpx.get(f"{server.url}/", timeout=5).text == "second edit"
    finally:
        assert server.stop() == 0


def test_reload_command_restarts_on_an_edit(tmp_path: Path) -> None:
    reload = production_lines()[1]
    app_module(tmp_path / "web.py", "before")
    server = serve_line(reload, tmp_path, PYTHONDONTWRITEBYTECODE="1")
    try:
        assert httpx.get(f"{server.url}/", timeout=5).text == "before"
        mark = len(server.lines)
        app_module(tmp_path / "web.py", "after the edit")
        server.wait_for_log(r"Reloader: web\.py changed; restarting the server", start=mark)
        port = server.wait_for_log(LISTENING, start=mark, timeout=15).group(3)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "after the edit"
    finally:
        assert server.stop() == 0


def test_json_log_command_and_the_line_shown(tmp_path: Path) -> None:
    json_logs = production_lines()[2]
    app_module(tmp_path / "web.py", "ok")
    server = serve_line(json_logs, tmp_path)
    try:
        httpx.get(f"{server.url}/items?page=2", timeout=5)
        server.wait_for_log('"logger": "qt_access"')
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in server.lines]
    (access,) = [r for r in records if r["logger"] == "qt_access"]
    shown = json.loads(code_blocks("production.md", "json")[0])
    assert set(access) == set(shown)
    assert (access["method"], access["path"], access["status"]) == ("GET", "/items?page=2", 200)


def test_static_fields_config(tmp_path: Path) -> None:
    (tmp_path / "logging.json").write_text(code_blocks("production.md", "json")[1])
    app_module(tmp_path / "web.py", "ok")
    server = serve_line("qactuar web:app --log-config logging.json", tmp_path)
    try:
        line = server.wait_for_log(r'"message": "Listening on').string
    finally:
        assert server.stop() == 0
    record = json.loads(line)
    assert (record["service"], record["region"]) == ("shop", "eu-west-1")


def test_send_timeout_command_serves(tmp_path: Path) -> None:
    limits = production_lines()[3]
    app_module(tmp_path / "web.py", "ok")
    server = serve_line(limits, tmp_path)
    try:
        assert httpx.get(f"{server.url}/", timeout=5).text == "ok"
    finally:
        assert server.stop() == 0


def test_every_flag_in_the_table_exists() -> None:
    page = (Path(__file__).parent.parent / "docs" / "production.md").read_text()
    table = page[page.index("| you typed"):page.index("`qactuar --help` lists")]
    rows = [row.split("|")[1:3] for row in table.splitlines()[2:] if row.startswith("|")]
    # A row's flags are Qactuar's: those in its right cell, and the left cell's where the
    # right one says "the same".
    cells = [ours for _, ours in rows] + [typed for typed, ours in rows
                                          if ours.strip().startswith("the same")]
    flags = {flag for cell in cells for flag in re.findall(r"`(--?[a-zA-Z][\w-]*)", cell)}
    flags |= {flag for cell in cells for flag in re.findall(r", (--?[a-zA-Z][\w-]*)", cell)}
    help_text = run_to_exit([sys.executable, "-m", "qactuar", "--help"], child_env()).stdout
    missing = sorted(flag for flag in flags if not re.search(
        rf"(^|[\s,]){re.escape(flag)}\b", help_text, flags=re.M))
    assert not missing, missing
    assert len(flags) > 12
