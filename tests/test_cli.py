"""The command line (`python -m qactuar`, the `qactuar` script) and the `run()` API.

Every server here is a real process; its address comes from its "Listening on"
line.  Commands that must not serve run to their exit and are checked for the
exit status 2 and a single clear line on stderr.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import httpx
import pytest

import qactuar
from conftest import (
    TESTS_DIR,
    Launcher,
    ServerFactory,
    ServerProcess,
    assert_one_line_error,
    child_env,
    run_to_exit,
)
from qactuar.config import Config

REPO_DIR = TESTS_DIR.parent


def qactuar_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "qactuar", *args]


# -- the two ways to start the command line ---------------------------------------------


def test_python_m_qactuar_serves(start_server: ServerFactory) -> None:
    server = start_server("apps.basic:app")
    response = httpx.get(f"{server.url}/hello", timeout=5)
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert server.stop() == 0


def test_console_script_serves(launch: Launcher) -> None:
    script = shutil.which("qactuar", path=str(Path(sys.executable).parent))
    assert script is not None, f"no qactuar console script next to {sys.executable}"
    server = launch([script, "apps.basic:app", "--host", "127.0.0.1", "--port", "0"],
                    child_env(), TESTS_DIR)
    response = httpx.get(f"{server.url}/hello", timeout=5)
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert server.stop() == 0


def test_version_flag() -> None:
    result = run_to_exit(qactuar_command("--version"))
    assert result.returncode == 0, result.stderr
    assert qactuar.__version__ in result.stdout


def test_help_has_a_flag_for_every_scalar_setting() -> None:
    result = run_to_exit(qactuar_command("--help"))
    assert result.returncode == 0, result.stderr
    structured_or_obsolete = {"APPS", "LOGS", "BEANS", "SELECT_SLEEP_TIME", "RECV_TIMEOUT"}
    for field in fields(Config):
        if field.name in structured_or_obsolete:
            continue
        flag = "--" + field.name.lower().replace("_", "-")
        assert re.search(re.escape(flag) + r"\b", result.stdout), f"{flag} missing from --help"
    assert "--app-dir" in result.stdout
    assert "--model" in result.stdout


# -- where the app comes from ---------------------------------------------------------------


def test_app_dir_imports_from_that_directory(start_server: ServerFactory,
                                             tmp_path: Path) -> None:
    app_dir = tmp_path / "somewhere"
    app_dir.mkdir()
    (app_dir / "far_away_app.py").write_text(textwrap.dedent("""
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"from the app dir"})
    """))
    # Without --app-dir the module is not importable from the tests directory...
    line = assert_one_line_error(run_to_exit(qactuar_command("far_away_app:app")))
    assert "far_away_app" in line
    # ...with it, it is.
    server = start_server("far_away_app:app", "--app-dir", str(app_dir))
    assert httpx.get(f"{server.url}/", timeout=5).text == "from the app dir"
    # A relative --app-dir is relative to the working directory.
    relative = start_server("far_away_app:app", "--app-dir", "somewhere", cwd=tmp_path)
    assert httpx.get(f"{relative.url}/", timeout=5).text == "from the app dir"


def test_missing_module_is_one_clear_line() -> None:
    line = assert_one_line_error(run_to_exit(qactuar_command("no_such_module_xyz:app")))
    assert "no_such_module_xyz" in line
    assert "no module" in line.lower()


def test_missing_attribute_is_one_clear_line() -> None:
    line = assert_one_line_error(run_to_exit(qactuar_command("apps.basic:no_such_app")))
    assert "apps.basic" in line
    assert "no_such_app" in line
    assert "attribute" in line


def test_module_with_a_missing_dependency_names_the_dependency(tmp_path: Path) -> None:
    (tmp_path / "needs_dependency.py").write_text("import not_installed_dependency_xyz\n")
    result = run_to_exit(qactuar_command("needs_dependency:app", "--app-dir", str(tmp_path)))
    line = assert_one_line_error(result)
    assert "not_installed_dependency_xyz" in line
    assert "needs_dependency" in line


@pytest.mark.parametrize(("target", "words"), [
    ("apps.basic", ["apps.basic", "module:attribute"]),
    ("apps.lifespan_apps:EVENTS_VAR", ["EVENTS_VAR", "not callable"]),
])
def test_bad_app_targets_are_one_clear_line(target: str, words: list[str]) -> None:
    line = assert_one_line_error(run_to_exit(qactuar_command(target)))
    for word in words:
        assert word in line


def test_no_app_serves_the_welcome_page(start_server: ServerFactory) -> None:
    server = start_server()
    server.wait_for_log(re.compile(r"welcome page", re.IGNORECASE))
    response = httpx.get(f"{server.url}/", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Qactuar" in response.text
    assert qactuar.__version__ in response.text
    assert server.stop() == 0


# -- qactuar.run() from a script ----------------------------------------------------------

API_SCRIPT = textwrap.dedent("""
    import sys

    import qactuar


    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = f"run() app root_path={scope['root_path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


    mode = sys.argv[1]
    if mode == "keywords":
        qactuar.run(app=app, host="127.0.0.1", port=0)
    elif mode == "conf":
        qactuar.run(app=app, conf=qactuar.Config(HOST="127.0.0.1", PORT=0, ROOT_PATH="/conf",
                                                 SERVER_HEADER=False))
    elif mode == "keywords-over-conf":
        # The conf's address cannot be bound: host and port must win over it.
        qactuar.run(app=app, host="127.0.0.1", port=0,
                    conf=qactuar.Config(HOST="192.0.2.1", PORT=1, ROOT_PATH="/conf"))
    elif mode == "string":
        qactuar.run(app="apps.basic:app", host="127.0.0.1", port=0)
    elif mode == "environment":
        qactuar.run(app=app, port=0)
    elif mode == "bad-port":
        qactuar.run(app=app, host="127.0.0.1", port=-1)
    print("run() returned", flush=True)
""")


@pytest.fixture
def api_script(tmp_path: Path) -> Path:
    path = tmp_path / "serve_with_run.py"
    path.write_text(API_SCRIPT)
    return path


def launch_api(launch: Launcher, script: Path, mode: str,
               **env: str) -> ServerProcess:
    return launch([sys.executable, str(script), mode], child_env(**env), script.parent)


def test_run_with_host_and_port(launch: Launcher, api_script: Path) -> None:
    server = launch_api(launch, api_script, "keywords")
    response = httpx.get(f"{server.url}/x", timeout=5)
    assert response.text == "run() app root_path="
    assert "server" in response.headers
    assert server.stop() == 0
    assert "run() returned" in server.output


def test_run_with_a_config_object(launch: Launcher, api_script: Path) -> None:
    server = launch_api(launch, api_script, "conf")
    response = httpx.get(f"{server.url}/x", timeout=5)
    assert response.text == "run() app root_path=/conf"
    assert "server" not in response.headers
    assert server.stop() == 0


def test_run_keywords_override_the_config_object(launch: Launcher,
                                                  api_script: Path) -> None:
    server = launch_api(launch, api_script, "keywords-over-conf")
    assert server.host == "127.0.0.1"
    assert httpx.get(f"{server.url}/x", timeout=5).text == "run() app root_path=/conf"
    assert server.stop() == 0


def test_run_with_an_app_string(launch: Launcher, api_script: Path) -> None:
    server = launch_api(launch, api_script, "string")
    assert httpx.get(f"{server.url}/hello", timeout=5).text == "Hello, world!"
    assert server.stop() == 0


def test_run_without_conf_reads_the_environment(launch: Launcher,
                                                api_script: Path) -> None:
    server = launch_api(launch, api_script, "environment", QACTUAR_HOST="127.0.0.1",
                        QACTUAR_PORT="1", QACTUAR_ROOT_PATH="/env")
    assert server.host == "127.0.0.1"
    assert httpx.get(f"{server.url}/x", timeout=5).text == "run() app root_path=/env"
    assert server.stop() == 0


def test_run_with_a_bad_setting_exits_2(api_script: Path) -> None:
    result = run_to_exit([sys.executable, str(api_script), "bad-port"], cwd=api_script.parent)
    line = assert_one_line_error(result)
    assert "PORT" in line
    assert "-1" in line
    assert "run() returned" not in result.stdout
