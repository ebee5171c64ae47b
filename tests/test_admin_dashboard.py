"""The admin dashboard in a real headless Chromium, driven over the DevTools protocol.

Debian's `chromium` (installed by .ci/run) is started privately with a fresh
profile; the test speaks CDP over the `websockets` library: it loads the page,
checks that every request the page makes stays on the admin origin (no CDN), that
its numbers move under load, and that its buttons do what they say.
Set ADMIN_DASHBOARD_SCREENSHOT=path to keep the screenshot (docs/admin-dashboard.png).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_admin import MODELS, AdminServer, hello
from websockets.sync.client import connect

from conftest import ServerProcess, wait_until

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1100", "--remote-debugging-port=0"]


class Page:
    """One Chromium tab, spoken to over the DevTools protocol."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == ident:
                assert "error" not in message, message
                return message["result"]  # type: ignore[no-any-return]
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def text(self, selector: str) -> str:
        return str(self.evaluate(f"document.querySelector({selector!r}).textContent"))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Page]:
    assert CHROMIUM is not None
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                                "about:blank"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            match = re.search(r"DevTools listening on ws://[\d.]+:(\d+)/", line)
            if match:
                port = int(match.group(1))
                break
        assert port, "chromium did not start its DevTools endpoint"
        threading.Thread(target=process.stderr.read, daemon=True).start()  # keep it drained
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        tab = next(t for t in targets if t["type"] == "page")
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as socket:
            yield Page(socket)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_dashboard_shows_live_numbers_and_its_buttons_act(browser: Page) -> None:
    process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0", "--admin",
                             "--admin-port", "0", "--no-access-log", "--gather-proc-stats",
                             *MODELS["prefork"]])
    server = AdminServer(process)
    try:
        browser.call("Network.enable")
        browser.call("Page.enable")
        browser.call("Page.navigate", url=server.admin_url + "/")
        wait_until(lambda: browser.evaluate(
            "document.querySelectorAll('#processes tbody tr').length") == 3, 20,
            "the supervisor and two workers in the page")
        assert browser.text("#workers") == "2"
        assert "prefork" in browser.text("#server")

        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                hello(server.url)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            wait_until(lambda: int(browser.text("#total-requests")) > 30, 20,
                       "the request count to move")
            wait_until(lambda: int(browser.text("#rate")) > 0, 20, "a request rate")
            assert browser.evaluate("charts.rate.series[0].some((v) => v > 0)")
            assert browser.evaluate(
                "charts.latency.series[0].some((v) => v !== null && v > 0)")
            if os.environ.get("ADMIN_DASHBOARD_SCREENSHOT"):  # fuller charts for the docs
                wait_until(lambda: browser.evaluate("charts.rate.series[0].length") >= 20, 40,
                           "20 seconds of charts")
        finally:
            stop.set()
            loader.join()

        shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        assert shot.startswith(b"\x89PNG")
        if os.environ.get("ADMIN_DASHBOARD_SCREENSHOT"):
            Path(os.environ["ADMIN_DASHBOARD_SCREENSHOT"]).write_bytes(shot)

        # The + button adds a worker; the page and the API agree.
        browser.evaluate("document.querySelector('#workers-up').click()")
        wait_until(lambda: browser.text("#message") == "worker added", 20, "worker added")
        status = server.admin("GET", "/status").json()
        workers = {p["pid"] for p in status["processes"]
                   if p["role"] == "worker" and not p["stopping"]}
        assert len(workers) == 3
        wait_until(lambda: browser.text("#workers") == "3", 10, "the page to show 3 workers")

        # Reload: new workers serve, the old ones are gone.
        browser.evaluate("document.querySelector('#reload').click()")
        wait_until(lambda: browser.text("#message").startswith("reloaded"), 30, "reloaded")
        status = server.admin("GET", "/status").json()
        now = {p["pid"] for p in status["processes"]
               if p["role"] == "worker" and not p["stopping"]}
        assert len(now) == 3 and not now & workers

        # App reload: the app row's button mounts it again.
        browser.evaluate("document.querySelector('#apps button').click()")
        wait_until(lambda: browser.text("#message") == "app reloaded", 30,
                   "app reloaded (the page says: " + browser.text("#message") + ")")
        process.wait_for_log(r"admin: apps mount / admin_app:app")
        assert hello(server.url) == 200

        # Nothing the page loaded came from anywhere but the admin plane itself.
        urls = [event["params"]["request"]["url"] for event in browser.events
                if event.get("method") == "Network.requestWillBeSent"]
        assert urls and all(url.startswith(server.admin_url + "/") for url in urls), urls
    finally:
        process.stop()


def test_dashboard_asks_for_the_token(browser: Page) -> None:
    process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0", "--admin",
                             "--admin-port", "0", "--admin-token", "s3cret"])
    server = AdminServer(process)
    try:
        browser.call("Page.navigate", url=server.admin_url + "/")
        wait_until(lambda: browser.evaluate("document.querySelector('#login') !== null"), 20,
                   "the page")
        # Shown (it has a layout box) once the API has answered 401.
        wait_until(lambda: browser.evaluate("document.querySelector('#login').offsetParent "
                                            "!== null"), 20, "the token form")
        assert browser.text("#total-requests") == "0"
        browser.evaluate("document.querySelector('#token').value = 'wrong';"
                         "document.querySelector('#login button').click()")
        wait_until(lambda: "valid token" in browser.text("#message"), 20, "the 401 reason")
        browser.evaluate("document.querySelector('#token').value = 's3cret';"
                         "document.querySelector('#login button').click()")
        wait_until(lambda: "async" in browser.text("#server"), 20, "the status with the token")
        hello(server.url)
        wait_until(lambda: browser.text("#total-requests") == "1", 20, "the request counted")
    finally:
        process.stop()


def test_dashboard_pod_panel_lists_beans_and_its_buttons_act(browser: Page) -> None:
    beans = [{"core": "apps.pod_admin_beans.waiter", "label": "waiter"}]
    process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0", "--admin",
                             "--admin-port", "0", "--no-access-log"],
                            env={"QACTUAR_BEANS": json.dumps(beans),
                                 "QACTUAR_STOP_WAIT_TIME": "0.5"})
    server = AdminServer(process)
    try:
        browser.call("Page.navigate", url=server.admin_url + "/")
        # (null-safe: the page may still be loading when the first check runs)
        wait_until(lambda: browser.evaluate(
            "document.querySelector('#pod') !== null && "
            "!document.querySelector('#pod').hidden && "
            "document.querySelectorAll('#beans tbody tr').length === 1"), 20,
            "the pod panel with the one bean")
        row = "document.querySelector('#beans tbody tr')"
        assert "apps.pod_admin_beans.waiter" in browser.evaluate(f"{row}.textContent")
        assert "running" in browser.evaluate(f"{row}.textContent")

        def bean() -> dict[str, Any]:
            (listed,) = server.admin("GET", "/pod").json()["processes"][0]["beans"]
            return listed  # type: ignore[no-any-return]

        browser.evaluate(f"{row}.querySelector('[data-action=restart]').click()")
        wait_until(lambda: browser.text("#message").endswith("restart done"), 20,
                   "restart done (the page says: " + browser.text("#message") + ")")
        assert bean()["restarts"] == 1
        browser.evaluate(f"{row}.querySelector('[data-action=cancel]').click()")
        wait_until(lambda: browser.text("#message").endswith("cancel done"), 20, "cancel done")
        assert bean()["state"] == "cancelled"
        wait_until(lambda: "cancelled" in browser.evaluate(f"{row}.textContent"), 10,
                   "the row to show the cancelled bean")
    finally:
        process.stop()
