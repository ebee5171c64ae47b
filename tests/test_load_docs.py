"""The examples of docs/load.md run: every ```bash command against a real Qactuar server,
and the Kubernetes Indexed Job is a valid Job running `qactuar load`."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ServerProcess, child_env
from docs_examples import code_blocks

PLACEHOLDER = "http://127.0.0.1:8000"
COMMANDS = [line for block in code_blocks("load.md", "bash") for line in block.splitlines()
            if line.strip()]


def test_the_page_has_examples() -> None:
    assert len(COMMANDS) >= 5
    assert all(command.startswith("qactuar load ") for command in COMMANDS)


def page_files() -> dict[str, str]:
    """The files the page shows (a block whose first line is '# NAME.EXT: ...')."""
    files = {}
    for block in code_blocks("load.md", "text") + code_blocks("load.md", "python"):
        match = re.match(r"# (\S+\.\w+): ", block)
        if match:
            files[match.group(1)] = block
    return files


def test_the_commands_run_in_order(basic_server: ServerProcess, start_server,
                                   tmp_path: Path) -> None:
    ws_server = start_server("apps.ws_app:app")
    files = page_files()
    assert set(files) == {"targets.txt", "scenario.py"}
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace(PLACEHOLDER, basic_server.url))
    for command in COMMANDS:
        url = ws_server.url.replace("http://", "ws://") if "ws://" in command \
            else basic_server.url
        words = shlex.split(command.replace(PLACEHOLDER, url).replace(
            "ws://127.0.0.1:8000", url))
        result = subprocess.run([sys.executable, "-m", "qactuar.load", *words[2:]],
                                capture_output=True, text=True, timeout=60, cwd=tmp_path,
                                env=child_env())
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
        assert "requests: " in result.stdout
    assert (tmp_path / "all.json").exists()
    assert "<svg" in (tmp_path / "report.html").read_text()


def test_the_documented_target_file_error_is_what_the_command_says(tmp_path: Path) -> None:
    lines = page_files()["targets.txt"].splitlines()
    lines[5] = "oops"  # line 6
    (tmp_path / "targets.txt").write_text("\n".join(lines) + "\n")
    result = subprocess.run([sys.executable, "-m", "qactuar.load", "--targets", "targets.txt"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env=child_env())
    assert result.returncode == 2
    documented = [block.strip() for block in code_blocks("load.md", "text")
                  if block.startswith("qactuar load: error: targets.txt:6:")]
    assert documented == [result.stderr.strip()]


def test_the_documented_progress_line_is_the_commands_format() -> None:
    from qactuar.load.report import progress_line
    from qactuar.load.stats import RunStats

    (shown,) = [block.strip() for block in code_blocks("load.md", "text")
                if block.startswith("[")]
    stats = RunStats()
    stats.succeeded = 125_310
    stats.series = [{"second": 2, "requests": 41_802, "errors": 0, "p50_ns": 0, "p90_ns": 0,
                     "p99_ns": 2_910_000, "max_ns": 0}]
    assert progress_line(stats, 3) == shown


def test_the_indexed_job_runs_qactuar_load_per_index() -> None:
    (block,) = code_blocks("load.md", "yaml")
    job = yaml.safe_load(block)
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = " ".join(container["args"])
    assert "qactuar load" in script and "$JOB_COMPLETION_INDEX.json" in script


@pytest.mark.parametrize("page", ["load.md"])
def test_the_page_is_in_the_nav(page: str) -> None:
    nav = Path(__file__).resolve().parent.parent.joinpath("mkdocs.yml").read_text()
    assert f": {page}" in nav
