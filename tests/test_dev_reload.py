"""`--reload`: the server restarts when a watched file changes (watchfiles), logging the
first start and each restart with the file that changed; other files are ignored."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
from test_code_reload import write_app

from conftest import LISTENING, ServerProcess
from qactuar.reloader import WatchFilter, child_arguments


def test_reload_restarts_on_an_edit(tmp_path: Path) -> None:
    write_app(tmp_path, "1")
    server = ServerProcess([], cwd=tmp_path, env={"PYTHONDONTWRITEBYTECODE": "1"}, command=[
        sys.executable, "-m", "qactuar", "versioned_app:app", "--reload", "--reload-dir",
        str(tmp_path), "--reload-exclude", "*.txt", "--host", "127.0.0.1", "--port", "0"])
    try:
        server.wait_for_log(r"Reloader pid \d+: watching .* for \*\.py \(not \*\.txt\); "
                            r"starting the server")
        assert httpx.get(f"{server.url}/", timeout=5).text == "1"
        mark = len(server.lines)
        (tmp_path / "notes.txt").write_text("not code")
        write_app(tmp_path, "2", padding="  # edited")
        server.wait_for_log(r"Reloader: versioned_app\.py changed; restarting the server",
                            start=mark)
        port = server.wait_for_log(LISTENING, start=mark, timeout=15).group(3)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "2"
    finally:
        assert server.stop() == 0, server.output
    assert "notes.txt" not in server.output
    assert len(re.findall(r"Listening on", server.output)) == 2


def test_reload_flags_are_not_passed_on_and_patterns_filter() -> None:
    assert child_arguments(["app:app", "--reload", "--reload-dir", "src", "--reload-include=*.py",
                            "--port", "1"]) == ["app:app", "--port", "1"]
    only_py = WatchFilter([], [])
    assert only_py(None, "/srv/app/main.py")
    assert not only_py(None, "/srv/app/__pycache__/main.py")
    assert not only_py(None, "/srv/app/.git/x.py") and not only_py(None, "/srv/app/a.txt")
    templates = WatchFilter(["*.py", "*.html"], ["tmp"])
    assert templates(None, "/srv/app/page.html") and not templates(None, "/srv/app/tmp/a.py")
