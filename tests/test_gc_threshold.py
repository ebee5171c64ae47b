"""GC_THRESHOLD: the collector's first threshold in a serving process, after start-up.

Each test asks the real server's app for the collector's settings in the process that
answers (tests/apps/gc_app.py), in the async model and in prefork workers.
"""

from __future__ import annotations

import gc

import httpx
import pytest

from conftest import ServerFactory, assert_one_line_error, run_qactuar

# The interpreter's own thresholds, as a fresh process starts with them.
DEFAULT = gc.get_threshold()


def collector_of(start_server: ServerFactory, *args: str, env: dict[str, str] | None = None
                 ) -> list[str]:
    server = start_server("apps.gc_app:app", "--no-access-log", *args, env=env)
    try:
        return httpx.get(server.url + "/", timeout=10).text.split()
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.models("async", "prefork")
def test_the_first_threshold_is_raised_to_7000_by_default(start_server: ServerFactory) -> None:
    assert collector_of(start_server) == ["7000", str(DEFAULT[1]), str(DEFAULT[2]), "True"]


@pytest.mark.models("async", "prefork")
def test_a_threshold_of_its_own(start_server: ServerFactory) -> None:
    assert collector_of(start_server, "--gc-threshold", "20000")[0] == "20000"
    assert collector_of(start_server, env={"QACTUAR_GC_THRESHOLD": "3000"})[0] == "3000"


def test_0_leaves_the_interpreters_thresholds(start_server: ServerFactory) -> None:
    assert collector_of(start_server, "--gc-threshold", "0") == [*map(str, DEFAULT), "True"]


def test_an_apps_own_collector_settings_are_kept(start_server: ServerFactory) -> None:
    assert collector_of(start_server, env={"TEST_GC_APP_THRESHOLD": "1234"})[0] == "1234"
    assert collector_of(start_server, env={"TEST_GC_APP_DISABLE": "1"}) == [
        *map(str, DEFAULT), "False"]


def test_a_negative_threshold_is_one_clear_error() -> None:
    line = assert_one_line_error(run_qactuar("apps.gc_app:app", "--gc-threshold", "-1"))
    assert "GC_THRESHOLD" in line and "0 to leave" in line, line
