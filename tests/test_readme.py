"""The README's examples are what the code does: its JSON and TOML blocks load,
its default LOGS is the real default, and its programmatic example serves."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import httpx

from conftest import TESTS_DIR, ServerProcess
from qactuar.config import Config
from qactuar.logs import default_log_config

README = (TESTS_DIR.parent / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_default_logs_shown_is_the_real_default() -> None:
    shown = [json.loads(block) for block in _blocks("json") if '"loggers"' in block]
    assert shown == [default_log_config()]


def test_the_config_file_examples_are_valid_and_agree() -> None:
    settings = [json.loads(block) for block in _blocks("json") if '"loggers"' not in block]
    settings += [tomllib.loads(block) for block in _blocks("toml")]
    assert len(settings) == 2
    assert settings[0] == settings[1]
    Config(**settings[0])  # every key and value is accepted


def test_the_programmatic_example_serves(tmp_path: Path) -> None:
    example = next(block for block in _blocks("python") if "qactuar.run(app=app)" in block)
    script = tmp_path / "example.py"
    # The example as written, but on a free port so tests never collide.
    script.write_text(example.replace("qactuar.run(app=app)",
                                      "qactuar.run(app=app, host='127.0.0.1', port=0)"))
    server = ServerProcess([], cwd=tmp_path, command=[sys.executable, str(script)])
    try:
        assert httpx.get(f"{server.url}/", timeout=5).text == "Hello, world!"
    finally:
        assert server.stop() == 0


def test_ci_runs_the_readme_commands_both_ways() -> None:
    # The set-up block's commands: install-and-serve, then install-and-test.
    setup_block = next(block for block in _blocks("bash") if "python3 -m pytest" in block)
    commands = [line for line in setup_block.splitlines() if line.startswith("python3 ")]
    assert commands == ["python3 -m pip install . && qactuar",
                        "python3 -m pip install -e '.[test]' && python3 -m pytest"]
    ci = (TESTS_DIR.parent / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
    # ...and the whole suite again on the pure-Python modules, the reference.
    assert "QACTUAR_PURE_PYTHON=1 python3 -m pytest" in ci.splitlines()
