"""Configuration: defaults, the order of sources, one validation path, obsolete keys.

Sources, later ones win: defaults < the file named by QACTUAR_CONFIG (JSON, or
TOML by its extension) < QACTUAR_<KEY> environment variables < command-line
flags.  The order is checked both on `load_config` and on a running server.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest

import qactuar
from conftest import TESTS_DIR, ServerFactory, assert_one_line_error, child_env, run_qactuar
from qactuar.config import Config, ConfigError, load_config

REPO_DIR = TESTS_DIR.parent






def write_settings(path: Path, settings: dict[str, Any]) -> Path:
    """Write settings as JSON, or as TOML when the file name ends in .toml."""
    if path.suffix == ".toml":
        lines = []
        for key, value in settings.items():
            assert not isinstance(value, dict), "nested tables are written by hand"
            lines.append(f"{key} = {json.dumps(value)}")  # JSON scalars are TOML scalars
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text(json.dumps(settings))
    return path


# -- defaults ------------------------------------------------------------------


def test_defaults_of_the_original_keys() -> None:
    config = Config()
    assert config.HOST == "localhost"
    assert config.PORT == 8000
    assert config.ADMIN_HOST == "localhost"
    assert config.ADMIN_PORT == 1986
    assert config.CHECK_PROCESS_INTERVAL == 1
    assert config.SELECT_SLEEP_TIME == 0.025
    assert config.RECV_TIMEOUT == 0.001
    assert config.RECV_BYTES == 65536
    assert config.MAX_PROCESSES == 500
    assert config.GATHER_PROC_STATS is False
    assert config.REQUEST_TIMEOUT == 5
    assert config.APPS == {}
    assert config.ASYNCRONOUS_MODEL == "async"


def test_default_logs_are_the_original_setup() -> None:
    logs = Config().LOGS
    assert logs["version"] == 1
    assert logs["disable_existing_loggers"] is False
    assert logs["formatters"]["standard"] == {"format": "{asctime} {levelname} {message}",
                                              "style": "{"}
    assert logs["formatters"]["access"] == {"format": "{asctime} ACCESS {message}",
                                            "style": "{"}
    assert set(logs["loggers"]) == {"qt_server", "qt_child", "qt_access", "qt_exception"}
    assert logs["handlers"]["exception"]["stream"] == "ext://sys.stderr"
    # Each Config gets its own copy: changing one must not change the next.
    logs["loggers"].clear()
    Config().APPS["/x"] = "a:b"
    assert set(Config().LOGS["loggers"]) == {"qt_server", "qt_child", "qt_access",
                                             "qt_exception"}
    assert Config().APPS == {}


def test_load_config_without_any_source_gives_the_defaults() -> None:
    assert load_config(environ={}) == Config()


# -- precedence, directly on load_config --------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_load_config_precedence(tmp_path: Path, suffix: str) -> None:
    path = write_settings(tmp_path / f"settings{suffix}", {
        "HOST": "file-host", "PORT": 1111, "ROOT_PATH": "/file", "KEEP_ALIVE_TIMEOUT": 7,
        "ACCESS_LOG": False,
    })
    environ = {"QACTUAR_CONFIG": str(path)}

    from_file = load_config(environ=environ)
    assert (from_file.HOST, from_file.PORT, from_file.ROOT_PATH) == ("file-host", 1111, "/file")
    assert from_file.KEEP_ALIVE_TIMEOUT == 7
    assert from_file.ACCESS_LOG is False
    assert from_file.MAX_PROCESSES == 500  # untouched keys keep their defaults

    environ |= {"QACTUAR_PORT": "2222", "QACTUAR_ROOT_PATH": "/env",
                "QACTUAR_ACCESS_LOG": "true", "UNRELATED": "x"}
    from_env = load_config(environ=environ)
    assert (from_env.HOST, from_env.PORT, from_env.ROOT_PATH) == ("file-host", 2222, "/env")
    assert from_env.ACCESS_LOG is True
    assert from_env.KEEP_ALIVE_TIMEOUT == 7

    from_args = load_config({"PORT": 3333}, environ=environ)
    assert (from_args.HOST, from_args.PORT, from_args.ROOT_PATH) == ("file-host", 3333, "/env")
    assert from_args.KEEP_ALIVE_TIMEOUT == 7


def test_toml_is_chosen_by_the_file_extension(tmp_path: Path) -> None:
    # Valid TOML that is not JSON, with a table: it must be read as TOML.
    path = tmp_path / "qactuar.toml"
    path.write_text('# a TOML comment\nPORT = 4321\nROOT_PATH = "/t"\n\n'
                    '[APPS]\n"/api" = "apps.mounted:api"\n')
    config = load_config(environ={"QACTUAR_CONFIG": str(path)})
    assert config.PORT == 4321
    assert config.ROOT_PATH == "/t"
    assert config.APPS == {"/api": "apps.mounted:api"}


def test_load_config_reads_os_environ_by_default(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_settings(tmp_path / "c.json", {"PORT": 1234, "HOST": "h"})
    for name in list(os.environ):
        if name.startswith("QACTUAR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QACTUAR_CONFIG", str(path))
    monkeypatch.setenv("QACTUAR_HOST", "from-env")
    config = load_config()
    assert (config.HOST, config.PORT) == ("from-env", 1234)


# -- precedence, on a running server -----------------------------------------------------

LEVELS = ["defaults", "json-file", "toml-file", "env", "cli"]


@pytest.mark.parametrize("level", LEVELS)
def test_precedence_on_a_running_server(start_server: ServerFactory, tmp_path: Path,
                                        level: str) -> None:
    """Each source overrides the one before it: ROOT_PATH and SERVER_HEADER alternate."""
    env: dict[str, str] = {}
    args: list[str] = []
    expected_root, expected_server_header = "", True
    if level != "defaults":
        suffix = ".toml" if level == "toml-file" else ".json"
        root = "/toml" if level == "toml-file" else "/file"
        path = write_settings(tmp_path / f"settings{suffix}",
                              {"ROOT_PATH": root, "SERVER_HEADER": False})
        env["QACTUAR_CONFIG"] = str(path)
        expected_root, expected_server_header = root, False
    if level in ("env", "cli"):
        env |= {"QACTUAR_ROOT_PATH": "/env", "QACTUAR_SERVER_HEADER": "true"}
        expected_root, expected_server_header = "/env", True
    if level == "cli":
        args = ["--root-path", "/cli", "--no-server-header"]
        expected_root, expected_server_header = "/cli", False

    server = start_server("apps.mounted:root", *args, env=env)
    response = httpx.get(f"{server.url}/where", timeout=5)
    assert response.status_code == 200
    scope = response.json()
    assert scope["root_path"] == expected_root
    assert scope["path"] == expected_root + "/where"
    assert ("server" in response.headers) is expected_server_header, response.headers
    assert server.stop() == 0


def test_config_flag_wins_over_the_environment_variable(start_server: ServerFactory,
                                                        tmp_path: Path) -> None:
    env_file = write_settings(tmp_path / "from_env.json", {"ROOT_PATH": "/env-file"})
    flag_file = write_settings(tmp_path / "from_flag.toml", {"ROOT_PATH": "/flag-file"})
    server = start_server("apps.mounted:root", "--config", str(flag_file),
                          env={"QACTUAR_CONFIG": str(env_file)})
    assert httpx.get(f"{server.url}/x", timeout=5).json()["root_path"] == "/flag-file"


# -- one validation path ------------------------------------------------------------------


def test_unknown_key_in_a_json_file(tmp_path: Path) -> None:
    path = write_settings(tmp_path / "c.json", {"POTR": 9000})
    line = assert_one_line_error(run_qactuar("apps.basic:app",
                                             env=child_env(QACTUAR_CONFIG=str(path))))
    assert "POTR" in line
    assert "did you mean PORT?" in line


def test_unknown_key_in_a_toml_file(tmp_path: Path) -> None:
    path = write_settings(tmp_path / "c.toml", {"HSOT": "127.0.0.1"})
    line = assert_one_line_error(run_qactuar("apps.basic:app",
                                             env=child_env(QACTUAR_CONFIG=str(path))))
    assert "HSOT" in line
    assert "did you mean HOST?" in line


def test_unknown_key_in_the_environment() -> None:
    result = run_qactuar("apps.basic:app", env=child_env(QACTUAR_KEEPALIVE_TIMEOUT="3"))
    line = assert_one_line_error(result)
    assert "KEEPALIVE_TIMEOUT" in line
    assert "did you mean KEEP_ALIVE_TIMEOUT?" in line


WRONG_TYPES = {
    "env-port": ({"QACTUAR_PORT": "abc"}, None, [], ("PORT", "abc", "integer")),
    "json-port": ({}, {"PORT": "x"}, [], ("PORT", "'x'", "integer")),
    "toml-timeout": ({}, {"REQUEST_TIMEOUT": "soon"}, [], ("REQUEST_TIMEOUT", "soon",
                                                          "seconds")),
    "flag-port": ({}, None, ["--port", "-1"], ("PORT", "-1", "integer from 0 to 65535")),
    "flag-lifespan": ({}, None, ["--lifespan", "maybe"], ("LIFESPAN", "maybe",
                                                           "auto, on, off")),
    "env-bool": ({"QACTUAR_ACCESS_LOG": "perhaps"}, None, [], ("ACCESS_LOG", "perhaps",
                                                               "true or false")),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_wrong_type_names_key_value_and_expectation(tmp_path: Path, case: str) -> None:
    env_vars, settings, flags, wanted = WRONG_TYPES[case]
    env = child_env(**env_vars)
    if settings is not None:
        suffix = ".toml" if case.startswith("toml") else ".json"
        env["QACTUAR_CONFIG"] = str(write_settings(tmp_path / f"c{suffix}", settings))
    line = assert_one_line_error(run_qactuar("apps.basic:app", *flags, env=env))
    for part in wanted:
        assert part in line, line


@pytest.mark.parametrize("kwargs", [
    {"PORT": "x"}, {"PORT": 70000}, {"PORT": True}, {"LIFESPAN": "maybe"},
    {"REQUEST_TIMEOUT": "5"}, {"APPS": {"/api": "no-colon"}}, {"ACCESS_LOG": "yes"},
])
def test_config_constructor_validates(kwargs: dict[str, Any]) -> None:
    ((key, value),) = kwargs.items()
    with pytest.raises(ConfigError) as info:
        qactuar.Config(**kwargs)
    message = str(info.value)
    assert key in message
    assert "\n" not in message
    if not isinstance(value, dict):
        assert repr(value) in message


def test_config_error_is_the_class_in_qactuar_config() -> None:
    with pytest.raises(qactuar.config.ConfigError, match=r"PORT = 'x'.*expected"):
        qactuar.Config(PORT="x")


def test_unknown_key_through_load_config_names_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"did you mean MAX_BODY_SIZE\?"):
        load_config(environ={"QACTUAR_MAX_BODYSIZE": "10"})
    with pytest.raises(ConfigError, match=r"did you mean ROOT_PATH\?"):
        load_config({"ROOTPATH": "/x"}, environ={})


def test_unreadable_or_malformed_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    line = assert_one_line_error(run_qactuar("apps.basic:app",
                                             env=child_env(QACTUAR_CONFIG=str(missing))))
    assert str(missing) in line
    broken = tmp_path / "broken.toml"
    broken.write_text("PORT = = 1\n")
    line = assert_one_line_error(run_qactuar("apps.basic:app",
                                             env=child_env(QACTUAR_CONFIG=str(broken))))
    assert str(broken) in line


# -- obsolete keys ---------------------------------------------------------------------

OBSOLETE_WARNING = re.compile(r"WARNING .*(SELECT_SLEEP_TIME|RECV_TIMEOUT)")


def test_obsolete_keys_are_accepted_with_one_warning_each(start_server: ServerFactory,
                                                          tmp_path: Path) -> None:
    path = write_settings(tmp_path / "old.json", {"SELECT_SLEEP_TIME": 0.5})
    server = start_server("apps.basic:app", env={"QACTUAR_CONFIG": str(path),
                                                 "QACTUAR_RECV_TIMEOUT": "0.01"})
    for _ in range(3):
        assert httpx.get(f"{server.url}/hello", timeout=5).status_code == 200
    assert server.stop() == 0
    warnings = [line for line in server.lines if OBSOLETE_WARNING.search(line)]
    assert len([w for w in warnings if "SELECT_SLEEP_TIME" in w]) == 1, server.output
    assert len([w for w in warnings if "RECV_TIMEOUT" in w]) == 1, server.output


def test_no_obsolete_warning_when_the_keys_are_not_set(start_server: ServerFactory) -> None:
    server = start_server("apps.basic:app")
    assert server.stop() == 0
    assert not [line for line in server.lines if OBSOLETE_WARNING.search(line)], server.output


def test_obsolete_keys_load_from_every_source(tmp_path: Path) -> None:
    assert Config(SELECT_SLEEP_TIME=0.1, RECV_TIMEOUT=0.2).RECV_TIMEOUT == 0.2
    path = write_settings(tmp_path / "old.toml", {"SELECT_SLEEP_TIME": 0.3})
    config = load_config(environ={"QACTUAR_CONFIG": str(path), "QACTUAR_RECV_TIMEOUT": "0.4"})
    assert (config.SELECT_SLEEP_TIME, config.RECV_TIMEOUT) == (0.3, 0.4)


# -- ASYNCRONOUS_MODEL -----------------------------------------------------------------


@pytest.mark.parametrize(("given", "model"), [
    (1, "postfork"), (2, "async"), (3, "prefork"),
    ("1", "postfork"), ("2", "async"), ("3", "prefork"),
    ("async", "async"), ("prefork", "prefork"), ("postfork", "postfork"), ("Prefork", "prefork"),
])
def test_model_numbers_and_names(given: Any, model: str) -> None:
    chosen = Config(ASYNCRONOUS_MODEL=given).ASYNCRONOUS_MODEL
    assert chosen == model


@pytest.mark.parametrize("given", [0, 4, "threads", True, 2.0, ""])
def test_bad_model_is_rejected(given: Any) -> None:
    with pytest.raises(ConfigError, match="ASYNCRONOUS_MODEL"):
        Config(ASYNCRONOUS_MODEL=given)


def test_model_from_file_and_environment(tmp_path: Path) -> None:
    path = write_settings(tmp_path / "m.json", {"ASYNCRONOUS_MODEL": 3})
    assert load_config(environ={"QACTUAR_CONFIG": str(path)}).ASYNCRONOUS_MODEL == "prefork"
    environ = {"QACTUAR_CONFIG": str(path), "QACTUAR_ASYNCRONOUS_MODEL": "1"}
    assert load_config(environ=environ).ASYNCRONOUS_MODEL == "postfork"


@pytest.mark.parametrize("args", [["--model", "2"], ["--asyncronous-model", "async"]])
def test_async_model_by_number_or_name_serves(start_server: ServerFactory,
                                              args: list[str]) -> None:
    server = start_server("apps.basic:app", *args)
    assert "async model" in server.wait_for_log("Listening on").string
    assert httpx.get(f"{server.url}/hello", timeout=5).text == "Hello, world!"


# -- the docs' configuration reference -----------------------------------------------


def test_docs_configuration_reference_lists_exactly_the_config_fields() -> None:
    readme = REPO_DIR / "docs" / "settings.md"
    assert readme.exists(), "docs/settings.md is missing"
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines)
                  if line.startswith("#") and "configuration reference" in line.lower()), None)
    assert start is not None, 'docs/settings.md has no "Configuration reference" section'
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    section: list[str] = []
    for line in lines[start + 1:]:
        heading = re.match(r"(#+)\s", line)
        if heading and len(heading.group(1)) <= level:
            break
        section.append(line)
    documented: list[str] = []
    for line in section:
        if not line.lstrip().startswith("|"):
            continue
        first_cell = line.strip().strip("|").split("|")[0]
        documented += re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell)
    field_names = {f.name for f in fields(Config)}
    assert documented, "the Configuration reference has no table of `KEY` rows"
    missing = sorted(field_names - set(documented))
    unknown = sorted(set(documented) - field_names)
    assert not missing, f"Config fields missing from the docs reference: {missing}"
    assert not unknown, f"the docs reference lists keys that are not Config fields: {unknown}"
