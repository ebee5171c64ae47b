"""Mounting apps through the admin plane (POST/DELETE /apps) while serving under load.

The git source is a real bare repository made by the test (`git init --bare`,
reached as file://), cloned by the server into its releases directory.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_admin import MODELS, AdminServer

from conftest import ServerProcess, wait_until

# The body comes from the lifespan's state: an answer proves the app's own
# lifespan startup ran in the process serving it.
APP_SOURCE = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["body"] = b"{text}"
                {startup}
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    body = scope["state"]["body"]
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
'''
STARTS = 'await send({"type": "lifespan.startup.complete"})'
FAILS = 'await send({"type": "lifespan.startup.failed", "message": "no database"}); return'


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


def publish(repo: Path, work: Path, module: str, text: str, startup: str = STARTS,
            tag: str = "") -> None:
    """Commit `module`.py answering `text` and push it to the bare repo (and `tag`)."""
    (work / f"{module}.py").write_text(APP_SOURCE.format(text=text, startup=startup))
    git("add", ".", cwd=work)
    git("commit", "-qm", text, cwd=work)
    if tag:
        git("tag", tag, cwd=work)
    git("push", "-q", "--tags", str(repo), "HEAD:refs/heads/main", cwd=work)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    bare, work = tmp_path / "deploy.git", tmp_path / "work"
    bare.mkdir()
    work.mkdir()
    git("init", "-q", "--bare", "-b", "main", cwd=bare)
    git("init", "-q", "-b", "main", cwd=work)
    return bare, work


class Load:
    """Threads sending requests to each path until stopped; every failure is kept."""

    def __init__(self, url: str, paths: list[str], fresh: bool = False) -> None:
        """`fresh`: a new connection per request (a postfork child keeps, for its
        connection, the apps it was forked with)."""
        self.url, self.paths, self.fresh = url, paths, fresh
        self.failures: list[str] = []
        self.bodies: dict[str, set[str]] = {path: set() for path in paths}
        self.sent = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(path,)) for path in paths]

    def _run(self, path: str) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.get(self.url + path, headers={
                        "connection": "close"} if self.fresh else {})
                    self.sent += 1
                    self.bodies[path].add(response.text)
                    if response.status_code != 200:
                        self.failures.append(f"{path}: {response.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{path}: {exc!r}")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdminServer]:
    process = ServerProcess(["admin_app:app", "--app-dir", "apps", "--port", "0", "--admin",
                             "--admin-port", "0", "--no-access-log",
                             "--admin-releases-dir", str(tmp_path / "releases"),
                             *MODELS[request.param]])
    try:
        yield AdminServer(process)
    finally:
        process.stop()


@pytest.mark.parametrize("server", list(MODELS), indirect=True)
def test_mount_from_git_under_load_loses_no_request(server, repo):
    bare, work = repo
    publish(bare, work, "deployed", "release one", tag="v1")
    with Load(server.url, ["/"]) as load:
        wait_until(lambda: load.sent > 10, 10, "load running")
        answer = server.admin("POST", "/apps", json={
            "route": "/api", "git": f"file://{bare}", "ref": "v1", "app": "deployed:app"})
        assert answer.status_code == 200, answer.text
        assert Path(answer.json()["release"]).is_dir()
        assert httpx.get(server.url + "/api").text == "release one"
        # Replace it with the next release while /api itself is under load.
        publish(bare, work, "deployed", "release two")
        with Load(server.url, ["/api"], fresh=server.model == "postfork") as api_load:
            wait_until(lambda: api_load.sent > 10, 10, "load on /api")
            answer = server.admin("POST", "/apps", json={
                "route": "/api", "git": f"file://{bare}", "ref": "main", "app": "deployed:app"})
            assert answer.status_code == 200, answer.text
            mark = api_load.sent
            wait_until(lambda: api_load.sent > mark + 10, 10, "load after the switch")
        assert httpx.get(server.url + "/api").text == "release two"
        assert api_load.bodies["/api"] == {"release one", "release two"}
        assert not api_load.failures, api_load.failures[:5]
        routes = {a["route"]: a for a in server.admin("GET", "/apps").json()["apps"]}
        assert routes["/api"]["ref"] == "main" and routes["/"]["app"] == "admin_app:app"
        assert server.admin("DELETE", "/apps?route=/api").status_code == 200
        assert httpx.get(server.url + "/api").status_code != 200 or \
            httpx.get(server.url + "/api").text == "Hello, world!"
    assert not load.failures, load.failures[:5]
    server.process.wait_for_log(r"admin: apps mount /api deployed:app from file://")


@pytest.mark.parametrize("server", ["prefork"], indirect=True)
def test_broken_sources_are_refused_and_running_apps_untouched(server, repo, tmp_path):
    bare, work = repo
    publish(bare, work, "deployed", "good", tag="good")
    assert server.admin("POST", "/apps", json={
        "route": "/api", "git": f"file://{bare}", "ref": "good",
        "app": "deployed:app"}).status_code == 200
    publish(bare, work, "deployed", "bad", startup=FAILS, tag="lifespan-fails")
    (work / "broken.py").write_text("import not_a_module_anywhere\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "broken import", cwd=work)
    git("tag", "import-fails", cwd=work)
    git("push", "-q", "--tags", str(bare), "HEAD:refs/heads/main", cwd=work)
    cases = [
        ({"git": f"file://{tmp_path}/nowhere.git", "app": "deployed:app"}, "git clone"),
        ({"git": f"file://{bare}", "ref": "no-such-ref", "app": "deployed:app"}, "no-such-ref"),
        ({"git": f"file://{bare}", "ref": "import-fails", "app": "broken:app"},
         "not_a_module_anywhere"),
        ({"git": f"file://{bare}", "ref": "lifespan-fails", "app": "deployed:app"},
         "no database"),
        ({"app": "apps.nothing:app"}, "no module named"),
        ({"app": "no colon"}, "module:attribute"),
    ]
    for body, reason in cases:
        answer = server.admin("POST", "/apps", json={"route": "/api", **body})
        assert 400 <= answer.status_code < 600, answer.text
        assert reason in answer.json()["error"], (body, answer.text)
        assert httpx.get(server.url + "/api").text == "good"
    assert server.admin("POST", "/apps", json={"route": "/x", "app": "a:b",
                                               "branch": "x"}).status_code == 400
    assert server.admin("DELETE", "/apps?route=/nothing").status_code == 404
