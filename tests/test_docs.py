"""The documentation site: it builds strictly, and every example on its pages does what the
page says (the deployment page's examples are in test_docs_deployment.py).
Commands are run as written (see docs_commands.py), on a free port.
"""

from __future__ import annotations

import gc
import importlib
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import click
import httpx
import pytest

from conftest import TESTS_DIR, assert_hello_example_serves, child_env
from docs_commands import app_module, lines_of, run_line, serve_line, talk_until
from docs_examples import DOCS_DIR, code_blocks
from qactuar.cli import command
from qactuar.config import Config
from qactuar.logs import default_log_config

ROOT = TESTS_DIR.parent

# Every example block of every page, by (page, language); a new example needs a test here
# (and a new count), so none goes unrun. The ```text block is the access-log line shown.
RUN_BLOCKS = {
    ("index.md", "bash"): 2, ("index.md", "python"): 1, ("index.md", "console"): 1,
    ("settings.md", "json"): 2, ("settings.md", "toml"): 1, ("settings.md", "bash"): 2,
    ("settings.md", "text"): 1,
    ("process-models.md", "bash"): 2,
    ("deployment.md", "nginx"): 1, ("deployment.md", "haproxy"): 1,
    ("deployment.md", "ini"): 2, ("deployment.md", "dockerfile"): 1,
    ("deployment.md", "yaml"): 1, ("deployment.md", "text"): 1,
    ("tls-http2.md", "bash"): 1,
    ("websocket.md", "python"): 2,
    ("frameworks.md", "bash"): 1, ("frameworks.md", "python"): 4,
    ("benchmarks.md", "bash"): 2, ("benchmarks.md", "text"): 3,
}


def test_every_example_block_is_counted_so_none_goes_untested() -> None:
    found: dict[tuple[str, str], int] = {}
    for page in sorted(DOCS_DIR.glob("*.md")):
        for language in re.findall(r"^```(\S*)\n", page.read_text(), flags=re.M):
            # An opening fence has a language; the closing fence (bare ```) is skipped.
            if language:
                found[(page.name, language)] = found.get((page.name, language), 0) + 1
    # Pages other helpers add (docs/client.md, docs/pod.md) are tested by their own files.
    found = {key: count for key, count in found.items() if key[0] in
             {page for page, _ in RUN_BLOCKS}}
    assert found == RUN_BLOCKS


def test_the_site_builds_strictly_and_needs_no_cdn(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=child_env(NO_MKDOCS_2_WARNING="1"))
    assert result.returncode == 0, result.stdout + result.stderr
    for page in DOCS_DIR.glob("*.md"):
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.is_file(), page.name
    html = "".join(path.read_text() for path in site.rglob("*.html"))
    external = re.findall(r"""<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)""", html)
    assert external == [], "the site loads files from elsewhere at runtime"


# -- index.md ------------------------------------------------------------------------------


def test_getting_started_set_up_commands_are_the_readmes() -> None:
    setup, _ = code_blocks("index.md", "bash")
    readme = (ROOT / "README.md").read_text()
    (readme_setup,) = [block for block in re.findall(r"^```bash\n(.*?)^```", readme,
                                                     flags=re.S | re.M)
                       if "python3 -m pytest" in block]
    assert setup == readme_setup


def test_getting_started_command_lines_serve(tmp_path: Path) -> None:
    _, usage = code_blocks("index.md", "bash")
    app_module(tmp_path / "module.py", "from module.py")
    app_module(tmp_path / "src" / "module.py", "from src/module.py")
    expected = ["from module.py", "from src/module.py", "is running", "from module.py"]
    lines = lines_of(usage)
    assert len(lines) == len(expected)
    for line, answer in zip(lines, expected, strict=True):
        server = serve_line(line, tmp_path)
        try:
            assert answer in httpx.get(f"{server.url}/", timeout=10).text, line
        finally:
            assert server.stop() == 0, server.output


def test_getting_started_errors_are_the_lines_shown(tmp_path: Path) -> None:
    (session,) = code_blocks("index.md", "console")
    runs = re.findall(r"^\$ (.*)\n((?:[^$].*\n)*)", session, flags=re.M)
    assert len(runs) == 2
    for line, shown in runs:
        result = run_line(line, tmp_path)
        assert result.returncode == 2, line
        assert result.stdout + result.stderr == shown, line


def test_getting_started_programmatic_example_serves(tmp_path: Path) -> None:
    (example,) = code_blocks("index.md", "python")
    assert_hello_example_serves(example, tmp_path)
    # The commented alternative is valid too.
    match = re.search(r"conf=(qactuar\.Config\(.*\))\)$", example, flags=re.M)
    assert match is not None
    assert eval(match.group(1), {"qactuar": __import__("qactuar")}).PORT == 8080


# -- settings.md ---------------------------------------------------------------------------


def test_settings_file_examples_are_valid_and_agree() -> None:
    json_blocks = code_blocks("settings.md", "json")
    settings = [json.loads(block) for block in json_blocks if '"loggers"' not in block]
    settings += [tomllib.loads(block) for block in code_blocks("settings.md", "toml")]
    assert len(settings) == 2
    assert settings[0] == settings[1]
    Config(**settings[0])  # every key and value is accepted


def test_settings_default_logs_shown_is_the_real_default() -> None:
    shown = [json.loads(block) for block in code_blocks("settings.md", "json")
             if '"loggers"' in block]
    assert shown == [default_log_config()]


def test_settings_command_serves_the_file_with_the_environment_on_top(tmp_path: Path) -> None:
    (line,) = lines_of(code_blocks("settings.md", "bash")[0])
    file_settings = json.loads(code_blocks("settings.md", "json")[0])
    (tmp_path / "qactuar.json").write_text(json.dumps(file_settings))
    app_module(tmp_path / "web.py", "web")
    app_module(tmp_path / "api.py", "api")
    server = serve_line(line, tmp_path)
    try:
        assert httpx.get(f"{server.url}/", timeout=10).text == "web"
        assert httpx.get(f"{server.url}/api/items", timeout=10).text == "api"
    finally:
        assert server.stop() == 0, server.output
    # QACTUAR_ACCESS_LOG=false won over the default: no access lines at all.
    assert not [text for text in server.lines if " ACCESS " in text], server.output


def _default_cell(key: str) -> str:
    field = next(f for f in fields(Config) if f.name == key)
    if key == "LOGS":
        return "see [Logging](#logging)"
    default = field.default_factory() if field.default is MISSING else field.default
    return f"`{json.dumps(default)}`"


def _flag_cells() -> dict[str, str]:
    flags = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            flags[param.name.upper()] = ", ".join(f"`{opt}`" for opt in
                                                  param.opts + param.secondary_opts)
    return flags


def _reference_rows() -> dict[str, list[str]]:
    text = (DOCS_DIR / "settings.md").read_text()
    section = text[text.index("## Configuration reference"):text.index("## Logging")]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([A-Z][A-Z0-9_]*)` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return rows


def test_settings_reference_documents_every_field_as_the_code_defines_it() -> None:
    rows = _reference_rows()
    assert list(rows) == [f.name for f in fields(Config)], "one row per field, in order"
    flags = _flag_cells()
    for f in fields(Config):
        type_cell, default, variable, flag, *meaning_cells = rows[f.name]
        meaning = " | ".join(meaning_cells)
        assert type_cell == f"`{f.type}`", f.name
        assert default == _default_cell(f.name), f.name
        assert variable == f"`QACTUAR_{f.name}`", f.name
        assert flag == flags.get(f.name, "-"), f.name
        assert len(meaning) > 10, f"{f.name} has no description"


def test_settings_access_line_has_the_shape_shown(tmp_path: Path) -> None:
    (shown,) = code_blocks("settings.md", "text")
    shape = re.sub(r"\d+", r"\\d+", re.escape(shown.strip()))
    app_module(tmp_path / "module.py", "x" * 1432)
    server = serve_line("qactuar module:app", tmp_path)
    try:
        httpx.get(f"{server.url}/items?page=2", timeout=10)
        server.wait_for_log(" ACCESS ")
    finally:
        assert server.stop() == 0
    (line,) = [text for text in server.lines if " ACCESS " in text]
    assert re.fullmatch(shape, line), (shape, line)


def test_gc_threshold_examples(tmp_path: Path) -> None:
    app_module(tmp_path / "module.py", "served")
    raised, left = lines_of(code_blocks("settings.md", "bash")[1])
    for line, shown in ((raised, f"threshold {gc.get_threshold()[0]} -> 20000"), (left, None)):
        server = serve_line(line, tmp_path)
        try:
            assert httpx.get(f"{server.url}/", timeout=10).text == "served"
        finally:
            assert server.stop() == 0, server.output
        logged = [text for text in server.lines if "garbage collector threshold" in text]
        if shown is None:
            assert logged == [], logged  # 0: the interpreter's thresholds are left alone
        else:
            assert len(logged) == 1 and shown in logged[0], logged


# -- process-models.md ---------------------------------------------------------------------


def test_process_model_command_lines_serve_in_their_model(tmp_path: Path) -> None:
    app_module(tmp_path / "module.py", "served")
    expected = [r"starting 4 worker\(s\)", r"postfork model"]
    lines = lines_of(code_blocks("process-models.md", "bash")[0])
    for line, log in zip(lines, expected, strict=True):
        server = serve_line(line, tmp_path)
        try:
            server.wait_for_log(log)
            assert httpx.get(f"{server.url}/", timeout=10).text == "served"
        finally:
            assert server.stop() == 0, server.output


def test_process_model_signals_example(tmp_path: Path) -> None:
    app_module(tmp_path / "module.py", "served")
    start, *signals = lines_of(code_blocks("process-models.md", "bash")[1])
    server = serve_line(start.rstrip(" &"), tmp_path)
    try:
        server.wait_for_log("Prefork supervisor pid")
        for line in signals:
            shown = re.findall(r'"([^"]+)"', line)
            seen = len(server.lines)
            result = run_line(line.replace("$!", str(server.proc.pid)), tmp_path)
            assert result.returncode == 0, result.stderr
            for text in shown:
                server.wait_for_log(re.escape(text), timeout=30, start=seen)
        assert server.proc.wait(30) == 0
    finally:
        assert server.stop() == 0, server.output


# -- tls-http2.md --------------------------------------------------------------------------


def test_tls_example_serves_http2_to_curl(tmp_path: Path) -> None:
    make_cert, start, fetch = lines_of(code_blocks("tls-http2.md", "bash")[0])
    assert run_line(make_cert, tmp_path).returncode == 0
    assert (tmp_path / "cert.pem").is_file() and (tmp_path / "key.pem").is_file()
    start = start.split("&")[0].replace("--port 8443", "--port 0")
    server = serve_line(start, tmp_path)
    try:
        assert server.scheme == "https"
        result = run_line(fetch.replace(":8443", f":{server.port}"), tmp_path)
        assert result.returncode == 0, result.stderr
        assert "is running" in result.stdout
        assert result.stdout.endswith(" (HTTP/2)\n")
    finally:
        assert server.stop() == 0, server.output


# -- websocket.md --------------------------------------------------------------------------


def test_websocket_echo_example_talks_to_the_client_example(tmp_path: Path) -> None:
    app, client = code_blocks("websocket.md", "python")
    (tmp_path / "echo.py").write_text(app)
    server = serve_line("qactuar echo:app", tmp_path)
    try:
        script = client.replace("ws://localhost:8000/", f"ws://127.0.0.1:{server.port}/")
        assert script != client
        result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                text=True, timeout=30, env=child_env())
        assert (result.returncode, result.stdout) == (0, "echo: hello\n"), result.stderr
    finally:
        assert server.stop() == 0, server.output


# -- frameworks.md -------------------------------------------------------------------------


def test_frameworks_examples_commands(tmp_path: Path) -> None:
    install, start, *fetches, talk = lines_of(code_blocks("frameworks.md", "bash")[0])
    # The frameworks are in the test extra, which this test run has installed.
    assert shlex.split(install, comments=True) == ["python3", "-m", "pip", "install",
                                                   ".[test]"]
    directory, _, start = start.partition(" && ")
    assert directory == "cd examples"
    server = serve_line(start, ROOT / "examples")
    expected = ['"root_path":"/starlette"', '{"greeting": "Hello, Ann!"}',
                "3\n2\n1\nliftoff\n"]
    try:
        for fetch, answer in zip(fetches, expected, strict=True):
            result = run_line(fetch.replace(":8000", f":{server.port}"), tmp_path)
            assert result.returncode == 0, result.stderr
            assert answer in result.stdout, fetch
        assert talk_until(talk.replace(":8000", f":{server.port}"), "hello", "echo: hello")
    finally:
        assert server.stop() == 0, server.output


# -- benchmarks.md -------------------------------------------------------------------------


def _benchmarks_module(name: str) -> Any:
    """benchmarks.<name>, imported from the checkout (not an installed package)."""
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module(f"benchmarks.{name}")
    finally:
        sys.path.remove(str(ROOT))


def test_benchmark_commands_are_accepted_by_the_benchmark_script() -> None:
    # Parsing only: the benchmarks themselves are never run by the tests.
    parse_args = _benchmarks_module("__main__").parse_args
    lines = lines_of(code_blocks("benchmarks.md", "bash")[0])
    assert len(lines) == 3
    parsed: list[Any] = []
    for line in lines:
        words = shlex.split(line, comments=True)
        assert words[:3] == ["python", "-m", "benchmarks"]
        parsed.append(parse_args(words[3:]))
    assert parsed[1].rounds == 1 and parsed[1].duration == 2
    assert parsed[2].scenarios == ["hello", "10k"] and parsed[2].rounds == 5
    # --before: the commit's rows beside ours, written apart from the published results.
    (line,) = lines_of(code_blocks("benchmarks.md", "bash")[1])
    words = shlex.split(line)
    assert words[:3] == ["python", "-m", "benchmarks"]
    before = parse_args(words[3:])
    assert before.before == "HEAD" and before.rounds == 6
    assert before.output == ROOT / "benchmarks" / "build" / "before-results"


@pytest.mark.parametrize("block", [0, 1, 2])
def test_the_before_lines_shown_are_the_report_s_format(block: int) -> None:
    report = _benchmarks_module("report")
    shown = lines_of(code_blocks("benchmarks.md", "text")[block])
    assert len(shown) == 6
    for line in shown:
        match = re.fullmatch(r"(\S+), (qactuar(?: \(3\.\d+\))?): (\d\.\d{3}) x by rps; "
                             r"per round((?: \d\.\d\d)+)", line.strip())
        assert match, line
        # Rebuilt by the report from rounds with these ratios, the line reads the same.
        scenario, row, _, each = match.groups()
        ratios = [float(r) for r in each.split()]
        twin = f"{row} [0123456789]"
        results = {scenario: {"title": scenario, "kind": "wrk", "servers": {
            row: report.ServerResult(rounds=[{"rps": 1000.0 * r} for r in ratios]),
            twin: report.ServerResult(rounds=[{"rps": 1000.0} for _ in ratios])}}}
        meta = {"settings": {"qactuar_before": {twin: "qactuar at 0123456789"}}}
        rebuilt = report.before_lines(results, meta)[1]
        assert rebuilt.split(" x by")[1] == line.strip().split(" x by")[1]


def test_benchmarks_page_shows_the_latest_results() -> None:
    results = ROOT / "benchmarks" / "results"
    chart = DOCS_DIR / "img" / "benchmarks.svg"
    assert chart.read_bytes() == (results / "latest.svg").read_bytes(), (
        "copy benchmarks/results/latest.svg to docs/img/benchmarks.svg")
    latest = (results / "latest.md").read_text()
    summary = latest[latest.index("| scenario |"):latest.index("\n\n", latest.index("| scenario"))]
    assert summary in (DOCS_DIR / "benchmarks.md").read_text()

