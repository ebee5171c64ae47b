"""SIGHUP: the prefork model imports the app afresh and serves the edited code with no
failed request under load (a broken edit keeps the old workers); the async and postfork
models log that they ignore it and serve on (never an unlogged death)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import pytest
from test_prefork import Load

from apps.lifespan_apps import EVENTS_VAR
from conftest import Launcher, ServerFactory, fetch, wait_until

APP_SOURCE = '''
VERSION = {version}{padding}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = str(VERSION).encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
'''


def write_app(folder: Path, version: str, padding: str = "") -> None:
    (folder / "versioned_app.py").write_text(APP_SOURCE.format(version=version,
                                                               padding=padding))


def test_sighup_serves_edited_code_and_keeps_old_workers_on_a_broken_edit(
        start_server: ServerFactory, tmp_path: Path) -> None:
    write_app(tmp_path, "1")
    server = start_server("versioned_app:app", "--model", "prefork", "--workers", "2",
                          "--no-access-log", cwd=tmp_path, env={"PYTHONDONTWRITEBYTECODE": "1"})
    server.wait_for_log(r"App code: versioned_app \(.*versioned_app\.py, modified .*, sha256 ")
    load = Load(server, threads=2, path="/")
    try:
        wait_until(lambda: load.count() >= 20, what="requests before the edit")
        assert set(load.answers) == {1}
        write_app(tmp_path, "2", padding="  # edited")
        server.send_signal(signal.SIGHUP)
        server.wait_for_log(r"Received SIGHUP: imported the app afresh: versioned_app \(")
        server.wait_for_log(r"Reload finished: 2 new worker\(s\) serving", timeout=20)
        edited = load.count()
        wait_until(lambda: load.count() >= edited + 20 and 2 in load.answers[edited:],
                   what="answers from the edited code")
        write_app(tmp_path, "(", padding="  # a syntax error")
        mark = len(server.lines)
        server.send_signal(signal.SIGHUP)
        server.wait_for_log(r"reload refused, the old workers keep serving: cannot import app "
                            r"'versioned_app:app'", start=mark)
        broken = load.count()
        wait_until(lambda: load.count() >= broken + 20, what="requests after the broken edit")
        assert set(load.answers[broken:]) == {2}
    finally:
        load.stop()
    assert load.failures == []
    assert server.stop() == 0


@pytest.mark.models("async", "postfork")
def test_sighup_is_logged_and_ignored(start_server: ServerFactory, server_model: str,
                                      tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server = start_server("apps.process_app:app", env={EVENTS_VAR: str(events)})
    slow: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: slow.append(fetch(server, "/slow?s=1")))
    client.start()
    wait_until(lambda: "start /slow" in (events.read_text() if events.exists() else ""),
               what="the slow request in flight")
    server.send_signal(signal.SIGHUP)
    server.wait_for_log(rf"Received SIGHUP: ignored, the {server_model} model does not reload")
    client.join(10)
    assert slow == [(200, b"slow done")]  # the request in flight was not cut
    assert fetch(server, "/pid")[0] == 200
    assert server.stop() == 0


def test_sighup_with_an_app_object_restarts_workers_on_the_same_code(
        launch: Launcher, tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(APP_SOURCE.format(version="7", padding="") + (
        "\n\nif __name__ == '__main__':\n    import qactuar\n"
        "    qactuar.run(app=app, conf=qactuar.Config(HOST='127.0.0.1', PORT=0, "
        "ASYNCRONOUS_MODEL='prefork', WORKERS=1))\n"))
    server = launch([sys.executable, str(script)], {}, tmp_path)
    server.send_signal(signal.SIGHUP)
    server.wait_for_log(r"the app was given as an object, not \"module:attr\": new workers "
                        r"run the same code")
    server.wait_for_log(r"Reload finished: 1 new worker\(s\) serving", timeout=20)
    assert fetch(server, "/")[1] == b"7"
    assert server.stop() == 0
