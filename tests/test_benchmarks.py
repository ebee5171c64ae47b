"""`python -m benchmarks` itself: the h2-tls scenario's certificate and check, the rows of
`--pythons` and of `--before`, and the static-file scenario's figure of merit (req per
server CPU-second).

Real servers, real load tools, runs of a second: the tests check what the benchmark
measures and reports, never how fast anything is.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as driver  # noqa: E402
from benchmarks import before, environment, pythons, report, servers, tls_cert  # noqa: E402
from benchmarks.measure import Settings  # noqa: E402
from benchmarks.process import (  # noqa: E402
    ROOT,
    ServerFailed,
    ServerProcess,
    byte_compile,
    child_env,
)
from benchmarks.scenarios import SCENARIOS  # noqa: E402

needs_load_tools = pytest.mark.skipif(
    shutil.which("h2load") is None or shutil.which("wrk") is None
    or shutil.which("taskset") is None, reason="h2load, wrk and taskset (.ci/run installs them)")


@pytest.fixture
def here_row() -> Iterator[str]:
    """This interpreter registered as an extra qactuar row, as --pythons does."""
    name = "qactuar (here)"
    servers.add_server_under("qactuar", name, sys.executable)
    yield name
    servers.SERVERS.pop(name, None)


def test_the_certificate_is_made_for_the_run_with_a_pkcs8_key() -> None:
    tls_cert.ensure()
    assert tls_cert.KEY.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # granian's
    assert "BEGIN CERTIFICATE" in tls_cert.CERT.read_text()
    assert "BEGIN CERTIFICATE" in tls_cert.CA.read_text()


@needs_load_tools
def test_the_h2_tls_check_needs_http2_chosen_by_alpn() -> None:
    tls_cert.ensure()
    scenario = SCENARIOS["h2-tls"]
    spec = servers.SERVERS["qactuar"]
    with ServerProcess(spec, scenario.app, "0", "test-h2-tls", scenario.variant) as server:
        server.wait_ready()  # https, ALPN http/1.1
        scenario.verify(server.port)  # https, ALPN h2, the exact hello body
    # The same server over TLS with HTTP/2 off: ALPN does not choose h2, the check says so.
    def without_http2(app: str, port: int, variant: servers.Variant) -> list[str]:
        return [*spec.command(app, port, variant), "--http2", "off"]

    https_only = servers.ServerSpec("qactuar", without_http2, "qactuar")
    tls_variant = servers.Variant(tls=True)
    with ServerProcess(https_only, scenario.app, "0", "test-h2-tls-off", tls_variant) as server:
        server.wait_ready()
        with pytest.raises(ServerFailed, match="ALPN chose None, not 'h2'"):
            scenario.verify(server.port)


@needs_load_tools
def test_a_real_h2_tls_round_is_measured_over_tls() -> None:
    """One second of h2load against https: every request answered 2xx over HTTP/2."""
    args = driver.parse_args(["--scenarios", "h2-tls", "--servers", "qactuar,uvicorn",
                              "--rounds", "1", "--duration", "1", "--warmup", "0"])
    settings = Settings(seconds=1, warmup_seconds=0, server_cpu="0", load_cpu="1")
    results = driver.run(args, settings)
    measured = results["h2-tls"]["servers"]
    assert list(measured) == ["qactuar"]  # uvicorn serves no HTTP/2: not in the scenario
    assert not measured["qactuar"].failures, measured["qactuar"].failures
    assert measured["qactuar"].median("requests") > 0
    assert "https, ALPN h2" in results["h2-tls"]["load_note"]


def test_pythons_takes_versions_only() -> None:
    with pytest.raises(SystemExit) as refused:
        driver.parse_args(["--pythons", "three"])
    assert str(refused.value) == ("benchmarks: --pythons takes versions like 3.12,3.13, "
                                  "not 'three'")
    assert driver.parse_args(["--pythons", "3.12, 3.13,3.12"]).python_versions == [
        "3.12", "3.13"]


def test_a_missing_python_is_one_line_and_no_row(capsys: pytest.CaptureFixture[str]) -> None:
    args = driver.parse_args(["--pythons", "3.99", "--servers", "qactuar,uvicorn"])
    assert driver.add_python_rows(args) == {}
    assert args.servers == ["qactuar", "uvicorn"]
    error = capsys.readouterr().err
    assert error == ("benchmarks: --pythons 3.99: no Python 3.99 found (pyenv install 3.99, "
                     "or python3.99 on PATH); its rows are left out\n")


def test_pythons_without_the_qactuar_server_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    args = driver.parse_args(["--pythons", "3.12", "--servers", "granian"])
    assert driver.add_python_rows(args) == {} and args.servers == ["granian"]
    assert "no rows added" in capsys.readouterr().err


def test_a_peer_counts_as_installed_only_at_its_pinned_version() -> None:
    """What decides whether a version's venv needs `pip install granian==...`: the installed
    distribution's version, not whether something by that name imports."""
    def installed(name: str, pinned: str) -> bool:
        return subprocess.run([sys.executable, "-c", pythons._HAS_VERSION, name, pinned],
                              capture_output=True).returncode == 0

    assert installed("pytest", importlib.metadata.version("pytest")) and installed("pytest", "")
    assert not installed("pytest", "0.0.1")
    assert not installed("no-such-distribution-here", "")


def test_the_interpreters_are_found_as_ci_finds_them() -> None:
    """pyenv's X.Y (or pythonX.Y on PATH) that runs; this interpreter's version is one."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = pythons.find_interpreter(version)
    assert found is not None and Path(found).exists()
    assert pythons.find_interpreter("3.99") is None


@needs_load_tools
def test_python_rows_run_beside_qactuar_and_static_file_is_judged_per_cpu_second(
        here_row: str, tmp_path: Path) -> None:
    """A real one-second static-file round: the extra row is measured like qactuar's, and
    the report compares the servers by requests per server CPU-second."""
    args = driver.parse_args(["--scenarios", "static-file", "--servers", "qactuar",
                              "--rounds", "1", "--duration", "1", "--warmup", "0",
                              "--load-tool", "wrk"])
    args.servers.append(here_row)
    settings = Settings(seconds=1, warmup_seconds=0, server_cpu="0", load_cpu="1",
                        load_tool="wrk")
    results = driver.run(args, settings)
    entry = results["static-file"]
    assert list(entry["servers"]) == ["qactuar", here_row]
    for result in entry["servers"].values():
        assert not result.failures, result.failures
        assert result.median("requests_per_cpu_s") > 0 and result.median("rps") > 0
    assert entry["headline"] == "requests_per_cpu_s"
    assert entry["load_tool"] == "qactuar load"  # whatever --load-tool says
    assert report.load_tool(entry) == "qactuar load"
    header, rows = report.table_rows(results, "static-file")
    assert header[1] == "req/CPU-s (median)" and "req/s" in header
    assert [row[0] for row in rows] == ["qactuar", here_row]
    meta = environment.describe({"rounds": 1, "seconds": 1, "warmup_seconds": 0,
                                 "wrk_threads": 1, "wrk_connections": 64,
                                 "server_cpu": "0", "load_cpu": "1",
                                 "qactuar_pythons": {here_row: f"Python here ({sys.executable})"}})
    text = report.console_report(results, meta)
    assert (f"Rows per Python: qactuar runs under Python {meta['python']}, the peers under "
            f"{meta['python']}; {here_row}: ") in text
    written = report.write_outputs(results, meta, tmp_path)
    assert here_row in written[1].read_text()  # latest.md


@pytest.fixture
def version_rows() -> Iterator[tuple[str, str]]:
    """qactuar and the limit server under this interpreter as the rows of a version "9.9",
    registered as --pythons registers a version's rows."""
    names = ("qactuar (9.9)", "limit (9.9)")
    for name in names:
        servers.add_server_under(name.partition(" (")[0], name, sys.executable)
    yield names
    for name in names:
        servers.SERVERS.pop(name, None)


def test_a_version_row_is_its_server_under_another_interpreter(
        version_rows: tuple[str, str]) -> None:
    _, limit = version_rows
    spec, base = servers.SERVERS[limit], servers.SERVERS["limit"]
    variant = servers.Variant()
    assert spec.command("benchmarks.apps:hello", 8000, variant) == [
        sys.executable, *base.command("benchmarks.apps:hello", 8000, variant)[1:]]
    assert spec.base == "limit" and spec.skips == base.skips  # no Starlette row for it either


@needs_load_tools
def test_each_version_is_judged_against_the_peers_under_the_same_version(
        version_rows: tuple[str, str]) -> None:
    """A real one-second hello round of a version's rows: its targets compare qactuar
    under that version with the peer under that version, not with the driver's."""
    mine, limit = version_rows
    args = driver.parse_args(["--scenarios", "hello", "--servers", "qactuar,limit",
                              "--rounds", "1", "--duration", "1", "--warmup", "0"])
    args.servers += [mine, limit]
    settings = Settings(seconds=1, warmup_seconds=0, server_cpu="0", load_cpu="1")
    results = driver.run(args, settings)
    measured = results["hello"]["servers"]
    assert list(measured) == ["qactuar", "limit", mine, limit]
    assert not any(result.failures for result in measured.values())
    lines = report.target_lines(results)
    by_version = [line for line in lines if f"({mine})" in line]
    assert [line.split(":")[0] for line in by_version] == [
        f"  hello >= 0.6 x {limit} ({mine})"]
    expected = report.ratio(results, "hello", mine, limit)
    assert expected is not None and f": {expected:.2f} by req/s" in by_version[0]
    # The limit server is held back by the load tool: its CPU share is not a reason to
    # call the round noisy (qactuar's may be, on a busy machine).
    judged = by_version[0].partition(f"({mine}): ")[2]
    assert judged.endswith(("(met)", "(MISSED)", "of their CPU, not judged)"))
    assert limit not in judged


def test_a_per_cpu_second_headline_is_judged_whatever_the_cpu_share() -> None:
    """static-file: the load tool is the limit, so the servers' CPU share is not full; the
    target is judged by req/CPU-s all the same, and req/s shown beside it."""
    qactuar, granian = report.ServerResult(), report.ServerResult()
    qactuar.rounds.append({"rps": 2000.0, "requests_per_cpu_s": 8000.0,
                           "server_cpu_pct": 25.0, "load_cpu_pct": 99.0})
    granian.rounds.append({"rps": 2100.0, "requests_per_cpu_s": 2300.0,
                           "server_cpu_pct": 91.0, "load_cpu_pct": 50.0})
    results: report.Results = {"static-file": {
        "title": "static", "kind": "wrk", "headline": "requests_per_cpu_s",
        "servers": {"qactuar": qactuar, "granian": granian}}}
    line = report.ratio_target_line(results, "static-file", "granian", 1.0)
    assert line == "  static-file >= 1.0 x granian: 3.48 by req/CPU-s, 0.95 by req/s (met)"


def test_the_startup_scenario_starts_qactuar_from_its_bytecode() -> None:
    """Under PYTHONDONTWRITEBYTECODE nothing else writes the checkout's bytecode, and every
    start compiled qactuar's sources again: a cost an installed qactuar does not have."""
    cached = Path(importlib.util.cache_from_source(str(ROOT / "qactuar" / "cli.py")))
    cached.unlink(missing_ok=True)
    byte_compile(sys.executable)
    assert cached.is_file()


def test_before_runs_the_commit_from_its_worktree(tmp_path: Path) -> None:
    """--before: the commit checked out in a worktree, and its twin row's server started
    there, importing that checkout's qactuar and apps (this test does not compile it: a
    worktree without .so files runs pure Python)."""
    commit, tree = before.checkout("HEAD", tmp_path)
    twin = ""
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short=10", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert head == commit
        twin = before.add_twin("qactuar", commit, tree)
        assert twin == f"qactuar [{commit}]"
        spec = servers.SERVERS[twin]
        assert spec.base == "qactuar" and spec.source == tree
        with ServerProcess(spec, "benchmarks.apps:hello", "0", "test-before") as server:
            server.wait_ready()
            SCENARIOS["hello"].verify(server.port)
            assert server.popen is not None  # taskset runs the server in its own process
            pid = server.popen.pid
            assert Path(f"/proc/{pid}/cwd").resolve() == tree.resolve()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            pythonpath = next(v for v in environ if v.startswith(b"PYTHONPATH="))
            assert pythonpath.split(b"=", 1)[1].split(b":")[0] == str(tree).encode()
        # What a server started so imports: the worktree's qactuar and apps, not ours.
        imported = subprocess.run(
            [sys.executable, "-c", "import qactuar, benchmarks.apps as apps; "
             "print(qactuar.__file__); print(apps.__file__)"],
            cwd=tree, env=child_env(tree), capture_output=True, text=True, check=True)
        for path in imported.stdout.split():
            assert Path(path).resolve().is_relative_to(tree.resolve()), path
    finally:
        servers.SERVERS.pop(twin, None)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                       capture_output=True, check=False)


def test_before_names_a_bad_commit_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(before.BeforeFailed, match=r"^benchmarks: --before: git rev-parse"):
        before.checkout("no-such-commit-anywhere", tmp_path)


def test_the_before_lines_compare_each_row_with_its_twin_round_by_round() -> None:
    twin = "qactuar [0123456789]"
    results: report.Results = {
        "hello": {"title": "hello", "kind": "wrk", "servers": {
            "qactuar": report.ServerResult(rounds=[{"rps": 110.0}, {"rps": 100.0}]),
            twin: report.ServerResult(rounds=[{"rps": 100.0}, {"rps": 100.0}])}},
        "startup": {"title": "start-up", "kind": "startup", "servers": {
            "qactuar": report.ServerResult(rounds=[{"startup_ms": 90.0}]),
            twin: report.ServerResult(rounds=[{"startup_ms": 100.0}])}}}
    meta = {"settings": {"qactuar_before": {twin: "qactuar at 0123456789 (a change)"}}}
    lines = report.before_lines(results, meta)
    assert lines[0] == ("Before/after, against qactuar at 0123456789 (a change): the "
                        "working tree's median over the commit's:")
    assert "  hello, qactuar: 1.050 x by rps; per round 1.10 1.00" in lines
    assert ("  startup, qactuar: 0.900 x by startup_ms (lower is better); per round 0.90"
            in lines)
    assert report.before_lines(results, {"settings": {}}) == []
