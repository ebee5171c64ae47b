"""APPS: several apps in one server, each at its route prefix, each with its own lifespan.

The longest matching prefix wins; a prefix matches whole path segments only.
An app's `root_path` is its prefix while `path` stays the full path, which is
what Starlette's `Mount` (and so FastAPI) expects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apps.lifespan_apps import EVENTS_VAR
from conftest import ServerFactory, ServerProcess, run_failing_server

# The servers of every test here run under each process model (conftest).
pytestmark = pytest.mark.all_models

MOUNTS = {"/api": "apps.mounted:api", "/api/v2": "apps.mounted:api_v2",
          "/admin/": "apps.mounted:admin"}


def write_apps(path: Path, apps: dict[str, str], **settings: Any) -> Path:
    path.write_text(json.dumps({"APPS": apps, **settings}))
    return path


@pytest.fixture(scope="module")
def mounted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = write_apps(tmp_path_factory.mktemp("apps") / "apps.json", MOUNTS)
    server = ServerProcess(["--host", "127.0.0.1", "--port", "0"],
                           env={"QACTUAR_CONFIG": str(config)})
    yield server
    server.stop()


@pytest.mark.parametrize(("path", "app", "root_path"), [
    ("/api", "api", "/api"),
    ("/api/", "api", "/api"),
    ("/api/items", "api", "/api"),
    ("/api/v20", "api", "/api"),
    ("/api/v2", "api_v2", "/api/v2"),
    ("/api/v2/users/1", "api_v2", "/api/v2"),
    ("/admin/x", "admin", "/admin"),
])
def test_longest_prefix_wins(mounted_server: ServerProcess, path: str, app: str,
                             root_path: str) -> None:
    response = httpx.get(f"{mounted_server.url}{path}?q=1", timeout=5)
    assert response.status_code == 200
    scope = response.json()
    assert scope["app"] == app
    assert scope["root_path"] == root_path
    assert scope["path"] == path  # the full path, prefix included
    assert scope["raw_path"] == path


@pytest.mark.parametrize("path", ["/", "/other", "/apiary", "/ap", "/admins", "/v2/api"])
def test_a_path_under_no_prefix_is_404(mounted_server: ServerProcess, path: str) -> None:
    response = httpx.get(f"{mounted_server.url}{path}", timeout=5)
    assert response.status_code == 404


def test_each_app_has_its_own_state(mounted_server: ServerProcess) -> None:
    with httpx.Client(base_url=mounted_server.url, timeout=5) as client:
        for path, owner in (("/api/x", "api"), ("/api/v2/x", "api_v2"), ("/admin", "admin")):
            assert client.get(path).json()["state"] == {"owner": owner}


# Once per worker in prefork (see test_prefork.py), so not run there.
@pytest.mark.models("async", "postfork")
def test_each_app_gets_its_own_lifespan(start_server: ServerFactory, tmp_path: Path) -> None:
    events_file = tmp_path / "events.txt"
    config = write_apps(tmp_path / "apps.json", MOUNTS)
    server = start_server(env={"QACTUAR_CONFIG": str(config), EVENTS_VAR: str(events_file)})
    assert sorted(events_file.read_text().splitlines()) == [
        "admin startup", "api startup", "api_v2 startup"]
    assert server.stop() == 0
    events = events_file.read_text().splitlines()
    for name in ("api", "api_v2", "admin"):
        assert [e for e in events if e.split()[0] == name] == [f"{name} startup",
                                                                f"{name} shutdown"]


@pytest.mark.parametrize("how", ["command-line app", "APPS at /"])
def test_a_root_app_takes_what_no_prefix_matches(start_server: ServerFactory, tmp_path: Path,
                                                 how: str) -> None:
    if how == "command-line app":
        config = write_apps(tmp_path / "apps.json", {"/api": "apps.mounted:api"})
        server = start_server("apps.mounted:root", env={"QACTUAR_CONFIG": str(config)})
    else:
        config = write_apps(tmp_path / "apps.json", {"/": "apps.mounted:root",
                                                     "/api": "apps.mounted:api"})
        server = start_server(env={"QACTUAR_CONFIG": str(config)})
    with httpx.Client(base_url=server.url, timeout=5) as client:
        root = client.get("/apiary").json()
        assert (root["app"], root["root_path"], root["path"]) == ("root", "", "/apiary")
        assert client.get("/").json()["app"] == "root"
        api = client.get("/api/x").json()
        assert (api["app"], api["root_path"], api["path"]) == ("api", "/api", "/api/x")


def test_root_path_is_prepended_to_the_mount_prefix(start_server: ServerFactory,
                                                    tmp_path: Path) -> None:
    """Behind a proxy that strips /base, /api/x reaches the /api app as /base/api/x."""
    config = write_apps(tmp_path / "apps.json", {"/api": "apps.mounted:api"},
                        ROOT_PATH="/base")
    server = start_server(env={"QACTUAR_CONFIG": str(config)})
    response = httpx.get(f"{server.url}/api/x", timeout=5)
    assert response.status_code == 200, response.text
    scope = response.json()
    assert (scope["app"], scope["root_path"], scope["path"]) == ("api", "/base/api",
                                                                  "/base/api/x")


def test_two_apps_at_one_prefix_is_a_configuration_error(tmp_path: Path) -> None:
    config = write_apps(tmp_path / "apps.json", {"/api": "apps.mounted:api",
                                                 "/api/": "apps.mounted:admin"})
    result = run_failing_server(QACTUAR_CONFIG=str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "/api" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_mounted_app_that_cannot_be_imported_is_one_clear_line(tmp_path: Path) -> None:
    config = write_apps(tmp_path / "apps.json", {"/api": "apps.mounted:nope"})
    result = run_failing_server(QACTUAR_CONFIG=str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "apps.mounted:nope" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
