"""The ASGI lifespan protocol: startup and shutdown, `state`, failures, LIFESPAN modes.

The apps (apps/lifespan_apps.py) append their events to a file whose name is
passed in the environment, so the order of startup, requests and shutdown can
be read back after the server has exited.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from apps.lifespan_apps import EVENTS_VAR
from conftest import ServerFactory, file_lines, run_failing_server

# The servers of every test here run under each process model (conftest).
pytestmark = pytest.mark.all_models


# Once per worker in prefork (see test_prefork.py), so not run there.
@pytest.mark.models("async", "postfork")
@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_and_shutdown_run_once_per_app_in_order(start_server: ServerFactory,
                                                        tmp_path: Path, mode: str) -> None:
    events_file = tmp_path / "events.txt"
    config = tmp_path / "apps.json"
    config.write_text(json.dumps({"APPS": {"/a": "apps.lifespan_apps:app_a",
                                           "/b": "apps.lifespan_apps:app_b"}}))
    server = start_server("apps.lifespan_apps:app", "--lifespan", mode,
                          env={EVENTS_VAR: str(events_file), "QACTUAR_CONFIG": str(config)})
    # Startup is complete before the server listens.
    assert sorted(e for e in file_lines(events_file) if e.endswith(" startup")) == [
        "a startup", "b startup", "main startup"]
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/x").text == "main: /x"
        assert client.get("/a/x").text == "a: /a/x"
        assert client.get("/b/x").text == "b: /b/x"
    assert server.stop() == 0

    events = file_lines(events_file)
    for name, path in (("main", "/x"), ("a", "/a/x"), ("b", "/b/x")):
        own = [e.split(" ", 1)[1] for e in events if e.startswith(name + " ")]
        assert own == ["lifespan-called", "startup", f"request {path}", f"done {path}",
                       "shutdown"], events
    startups = [i for i, e in enumerate(events) if e.endswith(" startup")]
    requests = [i for i, e in enumerate(events) if " request " in e or " done " in e]
    shutdowns = [i for i, e in enumerate(events) if e.endswith(" shutdown")]
    assert max(startups) < min(requests)
    assert max(requests) < min(shutdowns)


def test_state_from_startup_is_copied_into_every_request(start_server: ServerFactory) -> None:
    server = start_server("apps.lifespan_apps:app")
    initial = {"greeting": "hello from main", "name": "main"}
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/state").json() == initial
        mutated = client.get("/state/mutate").json()
        assert mutated == {"greeting": "changed by a request", "name": "main",
                           "added_by_request": True}
        # The next request on the same connection sees the startup state again.
        assert client.get("/state").json() == initial
    # So does a request on a new connection.
    assert httpx.get(f"{server.url}/state", timeout=5).json() == initial


def test_startup_failed_exits_non_zero_with_the_apps_message(tmp_path: Path) -> None:
    events_file = tmp_path / "events.txt"
    result = run_failing_server("apps.lifespan_apps:failing_startup_app",
                         **{EVENTS_VAR: str(events_file)})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "database unreachable (error 4242)" in output
    assert "Listening on" not in output
    assert "Traceback" not in output
    assert file_lines(events_file) == ["failing startup"]


# Once per worker in prefork (see test_prefork.py), so not run there.
@pytest.mark.models("async", "postfork")
@pytest.mark.parametrize("args", [[], ["--lifespan", "auto"]])
def test_auto_serves_an_app_that_raises_on_lifespan(start_server: ServerFactory,
                                                    tmp_path: Path, args: list[str]) -> None:
    events_file = tmp_path / "events.txt"
    server = start_server("apps.lifespan_apps:no_lifespan_app", *args,
                          env={EVENTS_VAR: str(events_file)})
    response = httpx.get(f"{server.url}/", timeout=5)
    assert response.status_code == 200
    assert response.text == "served without lifespan"
    assert server.stop() == 0
    # Asked once, at startup; never again at shutdown.
    assert file_lines(events_file) == ["no-lifespan lifespan-called"]


@pytest.mark.parametrize("source", ["flag", "environment"])
def test_on_refuses_an_app_that_raises_on_lifespan(source: str) -> None:
    if source == "flag":
        result = run_failing_server("apps.lifespan_apps:no_lifespan_app", "--lifespan", "on")
    else:
        result = run_failing_server("apps.lifespan_apps:no_lifespan_app", QACTUAR_LIFESPAN="on")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Listening on" not in output
    assert "unsupported scope type 'lifespan'" in output


def test_off_never_calls_the_app_with_lifespan(start_server: ServerFactory,
                                               tmp_path: Path) -> None:
    events_file = tmp_path / "events.txt"
    server = start_server("apps.lifespan_apps:app", "--lifespan", "off",
                          env={EVENTS_VAR: str(events_file)})
    assert httpx.get(f"{server.url}/x", timeout=5).text == "main: /x"
    assert server.stop() == 0
    assert file_lines(events_file) == ["main request /x", "main done /x"]


def test_off_from_the_environment_serves_an_app_without_lifespan(
        start_server: ServerFactory, tmp_path: Path) -> None:
    events_file = tmp_path / "events.txt"
    server = start_server("apps.lifespan_apps:no_lifespan_app",
                          env={EVENTS_VAR: str(events_file), "QACTUAR_LIFESPAN": "off"})
    assert httpx.get(f"{server.url}/", timeout=5).text == "served without lifespan"
    assert server.stop() == 0
    assert file_lines(events_file) == []
