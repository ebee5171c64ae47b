"""`qactuar load --targets FILE` and `--scenario FILE.py`: requests from a file, and users
running a Python scenario, against the real Qactuar server and raw-socket servers."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from load_helpers import (
    RawServer,
    error_counts,
    hello,
    read_json,
    report_counts,
    run_load,
    start_load,
)

from conftest import ServerProcess, wait_until
from qactuar.load.options import UsageError
from qactuar.load.target_file import read_target_file


def counts_add_up(output: str) -> dict[str, int]:
    counts = report_counts(output)
    assert counts["started"] == counts["succeeded"] + counts["failed"] + counts["errored"], output
    return counts


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# target files

def write_targets(tmp_path: Path, base: str) -> Path:
    (tmp_path / "body.bin").write_bytes(b"b" * 30_000)
    path = tmp_path / "targets.txt"
    path.write_text(f"""# four requests, used in turn
GET {base}/hello

POST {base}/echo
content-type: application/octet-stream
@body.bin

PUT {base}/echo
x-note: inline body
| ab
| cd
{base}/sized?n=7
""")
    return path


def test_a_target_file_is_parsed_into_its_blocks(tmp_path: Path) -> None:
    requests = read_target_file(str(write_targets(tmp_path, "http://127.0.0.1:8000")))
    assert [(r.method, r.target.path, r.line) for r in requests] == [
        ("GET", "/hello", 2), ("POST", "/echo", 4), ("PUT", "/echo", 8),
        ("GET", "/sized?n=7", 12)]
    assert requests[1].headers == (("content-type", "application/octet-stream"),)
    assert requests[1].body == b"b" * 30_000
    assert requests[2].headers == (("x-note", "inline body"),) and requests[2].body == b"ab\ncd"


# 40 requests over 4 entries: each entry 10 times, whatever the connections; the echoed
# bodies (30,000 bytes: more than one DATA frame on HTTP/2) add up to an exact total.
@pytest.mark.parametrize("extra", [["--h1"], ["--h1", "-m", "4"], [], ["-m", "8"],
                                   ["--h1", "--rate", "400"], ["--rate", "400"]],
                         ids=["h1", "h1-pipelined", "h2c", "h2c-streams", "h1-rate", "h2c-rate"])
def test_requests_rotate_through_the_target_file(basic_server: ServerProcess, tmp_path: Path,
                                                 extra: list[str]) -> None:
    path = write_targets(tmp_path, basic_server.url)
    result = run_load("-n", "40", "-c", "3", *extra, "--targets", str(path), "--json",
                      str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts_add_up(result.stdout)["succeeded"] == 40
    document = read_json(tmp_path / "r.json")
    assert document["results"]["bytes_data"] == 10 * (13 + 30_000 + 5 + 7)
    assert document["run"]["targets_file"] == str(path)


def test_a_file_of_urls_is_h2loads_input_file() -> None:
    with RawServer(hello) as server:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
            file.write(f"{server.url}a\n{server.url}b\n{server.url}c\n")
            file.flush()
            result = run_load("-n", "30", "-c", "2", "--h1", "-i", file.name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert counts_add_up(result.stdout)["succeeded"] == 30
        assert server.requests == 30


@pytest.mark.parametrize(("text", "line", "why"), [
    ("GET http://127.0.0.1:1/\nno header here\n", 2, "expected 'Name: value'"),
    ("x-orphan: 1\n", 1, "expected a request line"),
    ("GET ftp://127.0.0.1:1/\n", 1, "must start with http://"),
    ("GET http://127.0.0.1:1/\n@missing.bin\n", 2, "body file missing.bin"),
    ("POST http://127.0.0.1:1/\n| x\nx-late: 1\n", 3, "headers come before the body"),
    ("GET ws://127.0.0.1:1/\n", 1, "http:// and https://"),
    ("\n# nothing\n", None, "no request"),
])
def test_a_bad_target_file_is_one_line_naming_file_and_line(tmp_path: Path, text: str,
                                                            line: int | None, why: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    result = run_load("-n", "1", "--targets", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    (message,) = result.stderr.strip().splitlines()
    assert (f"{path}:{line}: " if line else str(path)) in message and why in message, message
    assert result.stdout == ""
    with pytest.raises(UsageError):
        read_target_file(str(path))


def test_targets_and_urls_or_a_body_do_not_mix(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("http://127.0.0.1:1/\n")
    for args in (["--targets", str(path), "http://127.0.0.1:1/"],
                 ["--targets", str(path), "-d", str(path)],
                 ["--targets", str(tmp_path / "absent.txt")]):
        result = run_load("-n", "1", *args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, args


# scenarios

SCENARIO = '''
async def user(client):
    hello = await client.get("/hello")
    assert hello.text == "Hello, world!"
    await client.post("/echo", content=b"12345")
'''


@pytest.mark.parametrize("extra", [[], ["--h1"], ["-t", "2"]], ids=["default", "h1", "workers"])
def test_each_user_runs_the_scenario_and_its_requests_are_counted(
        basic_server: ServerProcess, tmp_path: Path, extra: list[str]) -> None:
    scenario = tmp_path / "scenario.py"
    scenario.write_text(SCENARIO)
    result = run_load("-n", "30", "-c", "3", *extra, "--scenario", str(scenario),
                      basic_server.url, "--json", str(tmp_path / "r.json"),
                      "--csv", str(tmp_path / "r.csv"), "--fail-if", "errors>0")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = counts_add_up(result.stdout)
    assert counts["succeeded"] == 60 and counts["errored"] == 0
    results = read_json(tmp_path / "r.json")["results"]
    assert results["bytes_data"] == 30 * (13 + 5)
    assert results["latency"]["count"] == 60
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 61
    assert read_json(tmp_path / "r.json")["run"]["protocol"] == "scenario"


def test_a_scenario_error_is_counted_and_its_traceback_shown_once(
        basic_server: ServerProcess, tmp_path: Path) -> None:
    scenario = tmp_path / "broken.py"
    scenario.write_text('''
async def user(client):
    await client.get("/hello")
    raise KeyError("the scenario's own mistake")
''')
    result = run_load("-n", "12", "-c", "3", "--scenario", str(scenario), basic_server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    counts = counts_add_up(result.stdout)
    assert counts["succeeded"] == 12 and counts["errored"] == 12
    assert error_counts(result.stdout)["scenario"] == 12
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert "the scenario's own mistake" in result.stderr


def test_a_scenarios_request_errors_count_by_kind_without_tracebacks(tmp_path: Path) -> None:
    scenario = tmp_path / "refused.py"
    scenario.write_text("async def user(client):\n    await client.get('/')\n")
    result = run_load("-n", "6", "-c", "2", "--scenario", str(scenario),
                      f"http://127.0.0.1:{refused_port()}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert counts_add_up(result.stdout)["errored"] == 6
    assert error_counts(result.stdout)["connect"] == 6
    assert error_counts(result.stdout).get("scenario", 0) == 0
    assert "Traceback" not in result.stderr


def test_a_timed_scenario_ends_on_time_and_ctrl_c_reports_so_far(
        basic_server: ServerProcess, tmp_path: Path) -> None:
    scenario = tmp_path / "slow.py"
    scenario.write_text("import pathlib\n"
                        "async def user(client):\n"
                        "    await client.get('/sleep?s=0.05')\n"
                        "    pathlib.Path(__file__).with_suffix('.ran').touch()\n")
    timed = run_load("-D", "1", "-c", "2", "--scenario", str(scenario), basic_server.url,
                     "--json", str(tmp_path / "r.json"))
    assert timed.returncode == 0, timed.stdout + timed.stderr
    assert counts_add_up(timed.stdout)["succeeded"] > 5
    assert 0.9 <= read_json(tmp_path / "r.json")["results"]["duration_s"] < 3
    process = start_load("-D", "60", "-c", "2", "--scenario", str(scenario), basic_server.url)
    try:
        (tmp_path / "slow.ran").unlink()
        wait_until(lambda: process.poll() is not None or (tmp_path / "slow.ran").exists(), 15,
                   "a user to finish a run")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stdout + stderr
    assert "interrupted" in stdout and "Traceback" not in stderr
    counts_add_up(stdout)


@pytest.mark.parametrize(("source", "why"), [
    ("async def user(client)\n    pass\n", "cannot import it (line 1): SyntaxError"),
    ("import no_such_module_here\n", "cannot import it (line 1): ModuleNotFoundError"),
    ("async def visitor(client):\n    pass\n", "no 'async def user(client)'"),
    ("def user(client):\n    pass\n", "no 'async def user(client)'"),
])
def test_a_scenario_that_cannot_run_is_one_line_and_exit_2(tmp_path: Path, source: str,
                                                           why: str) -> None:
    scenario = tmp_path / "bad.py"
    scenario.write_text(source)
    result = run_load("-n", "1", "--scenario", str(scenario), "http://127.0.0.1:1")
    assert result.returncode == 2, result.stdout + result.stderr
    (message,) = result.stderr.strip().splitlines()
    assert why in message and str(scenario) in message, message
    missing = run_load("--scenario", str(tmp_path / "absent.py"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_a_scenario_that_never_waits_still_ends_on_time(tmp_path: Path) -> None:
    scenario = tmp_path / "busy.py"
    scenario.write_text("async def user(client):\n    pass\n")
    result = run_load("-D", "0.5", "-c", "2", "--scenario", str(scenario), timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report_counts(result.stdout)["started"] == 0
