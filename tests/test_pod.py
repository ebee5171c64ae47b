"""`qactuar pod run`: bean forms, the context, signals, stopping, restarts, bad input.

Every test runs the real command in its own process and talks to it with real
signals; the beans (apps/pod_beans.py) print what they do, and the tests read
those lines in order.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import assert_one_line_error, child_env
from pod_helpers import PodProcess, index_of, run_pod, script_env
from qactuar.pod.pod import CANCEL_GRACE, EXIT_BEAN_FAILED, EXIT_BEAN_RAISED

BEANS = "apps.pod_beans"


def stamp(output: str, pattern: str) -> float:
    """The time (seconds in the day) of the first log line matching `pattern`."""
    match = re.search(r"\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d),(\d{3}) [A-Z]+ " + pattern, output)
    assert match, f"no log line matching {pattern!r}:\n{output}"
    hours, minutes, seconds, millis = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


# -- the three forms and pass_context ---------------------------------------------------


def test_every_bean_form_and_pass_context_from_the_command_line() -> None:
    pod = PodProcess(f"{BEANS}.greet:name=Ozzy,times=2", "apps.pod_coroutine.hello",
                     f"{BEANS}.with_context:tag=x", f"{BEANS}.labelled", f"{BEANS}.Counter")
    try:
        pod.wait_for("counter id=5 label=None instance=True")
        pod.wait_for("hello from a coroutine object")
        pod.signal(signal.SIGINT)
        assert pod.wait() == 0
    finally:
        pod.kill()
    out = pod.output
    assert out.count("BEAN greet Ozzy") == 2  # keyword values arrive as Python literals
    assert "BEAN with_context id=3 label=None tag=x" in out
    assert "BEAN labelled label=labelled" in out  # pass_context(label=...)
    assert "BEAN counter 5 got SIGINT" in out
    assert "BEAN counter 5 stopped" in out


def test_command_line_values_keep_their_commas_inside_quotes_and_brackets() -> None:
    result = run_pod(f"{BEANS}.greet:name=\"a,b\",times=2",
                     f"{BEANS}.with_context:tag=[1,(2,3)]", f"{BEANS}.greet:name=it's,times=1",
                     rf"{BEANS}.greet:name=c\,d")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("BEAN greet a,b") == 2
    assert "tag=[1, (2, 3)]" in result.stdout
    assert "BEAN greet it's" in result.stdout  # an apostrophe inside a word starts no string
    assert "BEAN greet c,d" in result.stdout  # an escaped comma


def test_the_pod_ends_when_every_bean_has_finished() -> None:
    result = run_pod(f"{BEANS}.greet:name=once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BEAN greet once" in result.stdout
    assert "Pod stopped" in result.stdout


def test_config_file_names_options_and_extra_settings(tmp_path: Path) -> None:
    (tmp_path / "settings_bean.py").write_text(textwrap.dedent("""
        from qactuar.pod import pass_context

        @pass_context
        async def show(context, key1):
            c = context.config
            print("BEAN", key1, c.LOG_LEVEL, c.LOOP_TYPE, c.DEBUG, c.STOP_WAIT_TIME,
                  c.MY_SETTING, context.label, flush=True)
    """))
    (tmp_path / "config.py").write_text(textwrap.dedent("""
        BEANS = [
            {
                'core' : 'settings_bean.show',
                'label': 'first-bean',
                'key1' : 'value1',
            }
        ]

        LOG_LEVEL      = 'debug'
        LOOP_TYPE      = 'asyncio'
        DEBUG          = False
        STOP_WAIT_TIME = 10
        MY_SETTING     = 'mine'
    """))
    result = run_pod("-c", "config.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BEAN value1 DEBUG asyncio False 10 mine first-bean" in result.stdout
    assert "DEBUG Bean #1" in result.stdout  # LOG_LEVEL = 'debug' took effect

    # Options override the file; bean arguments are added to its BEANS.
    result = run_pod("-c", "config.py", "--log-level", "warning", "--loop", "uvloop",
                     "--stop-wait-time", "none", f"{BEANS}.greet:name=extra", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BEAN value1 WARNING uvloop False None mine first-bean" in result.stdout
    assert "BEAN greet extra" in result.stdout
    assert "INFO" not in result.stdout


# -- the context ------------------------------------------------------------------------


def test_context_api(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(textwrap.dedent(f"""
        BEANS = [
            {{"core": "{BEANS}.Counter", "label": "counter"}},
            {{"core": "{BEANS}.inspector"}},
        ]
        STOP_WAIT_TIME = 2
    """))
    result = run_pod("-c", str(tmp_path / "config.py"))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "BEAN found counter id=1 by_id=True" in out
    assert ("BEAN unknown label: UnknownBean: no bean has the label 'no-such-label' "
            "(labels: counter)") in out
    assert "BEAN greet runtime" in out
    assert "BEAN added bean done result=runtime" in out
    assert "BEAN temp cancelled" in out
    assert "BEAN removed temp state=cancelled labels=['', 'added', 'counter']" in out
    assert "BEAN counter 1 got SIGTERM" in out  # send_signal by label
    assert "BEAN counter done count>0=True" in out


# -- stopping ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_dispatches_the_signal_then_waits_then_cancels(signum: int) -> None:
    name = signal.Signals(signum).name
    pod = PodProcess(f"{BEANS}.Counter", f"{BEANS}.forever", "--stop-wait-time", "0.4")
    try:
        pod.wait_for("counter id=1")
        pod.signal(signum)
        assert pod.wait() == 0
    finally:
        pod.kill()
    out = pod.output
    # The callback got the signal and its bean ended; the other bean had no
    # callback, so it ran until STOP_WAIT_TIME and was then cancelled.
    assert index_of(out, f"Received {name}") < index_of(out, f"BEAN counter 1 got {name}") \
        < index_of(out, "BEAN counter 1 stopped") \
        < index_of(out, "Cancelling 1 bean(s) still running: #2 apps.pod_beans.forever") \
        < index_of(out, "BEAN forever cancelled")
    waited = stamp(out, "Cancelling") - stamp(out, f"Received {name}")
    assert waited >= 0.35, out


def test_without_stop_wait_time_a_stop_waits_for_every_bean_until_a_second_signal() -> None:
    pod = PodProcess(f"{BEANS}.Counter", f"{BEANS}.forever")
    try:
        pod.wait_for("counter id=1")
        pod.signal(signal.SIGTERM)
        pod.wait_for("BEAN counter 1 stopped")
        assert pod.proc.poll() is None  # `forever` is waited for, not cancelled
        assert "cancelled" not in pod.output
        pod.signal(signal.SIGTERM)
        assert pod.wait() == 0
    finally:
        pod.kill()
    out = pod.output
    assert index_of(out, "Received SIGTERM again: cancelling the beans now") \
        < index_of(out, "BEAN forever cancelled")


def test_a_bean_that_swallows_cancellation_is_named_and_the_process_still_exits() -> None:
    pod = PodProcess(f"{BEANS}.stubborn", f"{BEANS}.Counter", "--stop-wait-time", "0.2")
    try:
        pod.wait_for("counter id=2")
        pod.signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert pod.wait() == 0
        took = time.monotonic() - signalled
    finally:
        pod.kill()
    out = pod.output
    assert "BEAN stubborn swallowed a cancellation" in out
    assert re.search(r"ERROR Bean #1 apps\.pod_beans\.stubborn ignored cancellation", out), out
    # Bounded: STOP_WAIT_TIME plus the cancel grace, plus room for a busy machine.
    assert took < 0.2 + CANCEL_GRACE + 3, out


# -- supervision ------------------------------------------------------------------------


def test_transient_restarts_with_back_off_then_the_pod_fails(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = run_pod(f"{BEANS}.crash:path='{runs}',restart='transient',max_restarts=3,"
                     f"backoff=0.05,label='crashy'")
    out = result.stdout + result.stderr
    assert result.returncode == EXIT_BEAN_FAILED, out
    assert len(runs.read_text().splitlines()) == 4  # the first run and three restarts
    assert [float(d) for d in re.findall(r"restarting it in ([\d.]+)s", out)] == [
        0.05, 0.1, 0.2]
    assert re.search(r"ERROR Bean #1 apps\.pod_beans\.crash \(label 'crashy'\) failed the "
                     r"pod: it ended \(raised\) more than 3 restart\(s\) within 60s", out), out
    # Every exception is logged with its traceback, on stderr (qt_exception).
    assert result.stderr.count("Traceback (most recent call last)") == 4
    assert "RuntimeError: crash number 4" in result.stderr


def test_a_failing_bean_stops_the_others_with_sigterm(tmp_path: Path) -> None:
    result = run_pod(f"{BEANS}.Counter", f"{BEANS}.crash:path='{tmp_path / 'runs'}',"
                     "restart='transient',max_restarts=0")
    assert result.returncode == EXIT_BEAN_FAILED, result.stdout + result.stderr
    assert "BEAN counter 1 got SIGTERM" in result.stdout
    assert "Cancelling" not in result.stdout


def test_permanent_restarts_after_a_normal_return_too(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = run_pod(f"{BEANS}.quick:path='{runs}',restart='permanent',max_restarts=2,"
                     "backoff=0")
    assert result.returncode == EXIT_BEAN_FAILED, result.stdout + result.stderr
    assert len(runs.read_text().splitlines()) == 3
    assert "ended (returned) more than 2 restart(s)" in result.stdout


def test_a_cancelled_error_the_pod_did_not_cause_is_a_failure(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = run_pod(f"{BEANS}.cancelled_inside:path='{runs}',restart='transient',"
                     "max_restarts=1,backoff=0")
    out = result.stdout + result.stderr
    assert result.returncode == EXIT_BEAN_FAILED, out  # it was a quiet exit 0, no restart
    assert len(runs.read_text().splitlines()) == 2
    assert result.stderr.count("apps.pod_beans.cancelled_inside raised CancelledError") == 2
    assert "in cancelled_inside\n    await future" in result.stderr


@pytest.mark.parametrize("bean, policy", [("quick", "transient"), ("crash", "temporary")])
def test_no_restart_when_the_policy_says_so(tmp_path: Path, bean: str, policy: str) -> None:
    runs = tmp_path / "runs"
    result = run_pod(f"{BEANS}.{bean}:path='{runs}',restart='{policy}'")
    # A temporary bean's exception is not restarted but is the run's outcome: exit 1.
    expected = EXIT_BEAN_RAISED if bean == "crash" else 0
    assert result.returncode == expected, result.stdout + result.stderr
    assert len(runs.read_text().splitlines()) == 1
    assert "restarting" not in result.stdout
    if bean == "crash":  # not restarted, but never swallowed
        assert "RuntimeError: crash number 1" in result.stderr
        assert "ERROR Bean #1 apps.pod_beans.crash raised RuntimeError" in result.stderr


def test_restarts_outside_the_period_do_not_count(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pod = PodProcess(f"{BEANS}.crash:path='{runs}',delay=0.2,restart='transient',"
                     "max_restarts=1,restart_period=0.1,backoff=0")
    try:
        pod.wait_for("BEAN crash run 4")  # one restart per period: never past the limit
        pod.signal(signal.SIGTERM)
        assert pod.wait() == 0
    finally:
        pod.kill()
    assert "failed the pod" not in pod.output


# -- order and readiness ----------------------------------------------------------------


def test_after_waits_for_readiness_and_stop_runs_in_reverse(tmp_path: Path) -> None:
    go = tmp_path / "go"
    (tmp_path / "config.py").write_text(textwrap.dedent(f"""
        BEANS = [
            {{"core": "{BEANS}.Counter", "label": "third", "after": ["second"]}},
            {{"core": "{BEANS}.Gate", "label": "first", "gate": True, "go": {str(go)!r}}},
            {{"core": "{BEANS}.Counter", "label": "second", "after": "first"}},
        ]
        STOP_WAIT_TIME = 0.5
    """))
    pod = PodProcess("-c", str(tmp_path / "config.py"))
    try:
        pod.wait_for("Bean #2 apps.pod_beans.Counter \\(label 'second'\\) waits for first")
        assert "counter id=" not in pod.output  # nothing after `first` runs before it is ready
        go.touch()
        pod.wait_for("counter id=3 label=third")
        pod.signal(signal.SIGTERM)
        assert pod.wait() == 0
    finally:
        pod.kill()
    out = pod.output
    assert index_of(out, "Bean #1 apps.pod_beans.Gate (label 'first') is ready") \
        < index_of(out, "counter id=2 label=second") < index_of(out, "counter id=3 label=third")
    # Stop: the last started first, each level ended before the next is signalled.
    assert index_of(out, "BEAN counter 3 got SIGTERM") < index_of(out, "BEAN counter 3 stopped") \
        < index_of(out, "BEAN counter 2 got SIGTERM") < index_of(out, "BEAN counter 2 stopped") \
        < index_of(out, "BEAN gate cancelled")


def test_a_bean_after_one_that_ends_before_it_is_ready_fails_the_pod(tmp_path: Path) -> None:
    # It can never start: before, the pod waited for ever (until a signal).
    (tmp_path / "config.py").write_text(textwrap.dedent(f"""
        BEANS = [
            {{"core": "{BEANS}.crash", "label": "first", "gate": True,
              "path": {str(tmp_path / "runs")!r}}},
            {{"core": "{BEANS}.forever", "after": "first"}},
        ]
    """))
    result = run_pod("-c", str(tmp_path / "config.py"), timeout=10)
    out = result.stdout + result.stderr
    assert result.returncode == EXIT_BEAN_FAILED, out
    assert "Bean #1 apps.pod_beans.crash (label 'first') failed the pod: it ended before it " \
           "was ready (bean #2 apps.pod_beans.forever comes after it)" in out
    assert "never retrieved" not in out
    # The bean that never started is not waited for (nor "still running") at the stop.
    assert "Cancelling" not in out and "Stopping" not in out


# -- bad input: one line, exit 2 --------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["no_such_module.func"], "bean core 'no_such_module.func': no module named "
                              "'no_such_module'"),
    ([f"{BEANS}.nothing_here"], "module apps.pod_beans has no attribute 'nothing_here'"),
    ([f"{BEANS}.say"], "expected a coroutine, a coroutine function or a class with 'async "
                       "def __call__', not function"),
    (["apps.pod_beans.Path"], "a class bean needs 'async def __call__"),
    ([f"{BEANS}.greet:nam=1"], "bad keyword arguments: got an unexpected keyword argument "
                               "'nam'"),
    ([f"{BEANS}.greet:restart=sometimes"], "restart = 'sometimes': expected one of temporary"),
    ([f"{BEANS}.greet:after=nobody"], "after = 'nobody': no bean has that label"),
    ([f"{BEANS}.greet:placement=everywhere"], "placement = 'everywhere'"),
    (["apps.pod_coroutine.hello:restart='permanent'"], "a coroutine object runs once"),
    ([f"{BEANS}.greet", "--loop", "tokio"], "LOOP_TYPE = 'tokio'"),
    ([f"{BEANS}.greet", "--stop-wait-time", "soon"], "--stop-wait-time 'soon'"),
    ([f"{BEANS}.greet", "--blocked-loop-threshold", "abc"],
     "--blocked-loop-threshold 'abc': expected a number of seconds, 0 for off"),
    ([f"{BEANS}.greet", "--blocked-loop-threshold", "-1"], "BLOCKED_LOOP_THRESHOLD = -1.0"),
    ([f"{BEANS}.greet:name=a,b"], "'b' is not key=value"),
    ([f"{BEANS}.greet:name=a,"], "'' is not key=value"),
    ([f"{BEANS}.greet:name=1,name=2"], "name is given twice"),
    ([f"{BEANS}.greet:name=[1,2,times=2"], "'name=[1,2,times=2' has an unclosed bracket"),
    ([f"{BEANS}.greet:name='a,times=2"], "has an unclosed quote"),
    ([], "no beans to run"),
    (["-c", "missing.py"], "cannot read pod config file missing.py"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    line = assert_one_line_error(run_pod(*args))
    assert line.startswith("qactuar pod: error: "), line
    assert message in line, line


@pytest.mark.parametrize("text, message", [
    ("STOP_WAIT_TIMES = 3\nBEANS = [{'core': 'apps.pod_beans.greet'}]",
     "unknown pod config key 'STOP_WAIT_TIMES'"),
    ("BEANS = [{'label': 'x'}]", "BEANS[0]: the 'core' key"),
    ("BEANS = [{'core': 'apps.pod_beans:'}]", "bean core 'apps.pod_beans:': expected a "
                                               "dotted path"),
    ("BEANS = {'core': 'x'}", "config key BEANS"),
    ("BEANS = [{'core': 'apps.pod_beans.greet', 'max_restarts': -1}]", "max_restarts = -1"),
    ("LOG_LEVEL = 'loud'\nBEANS = [{'core': 'apps.pod_beans.greet'}]", "LOG_LEVEL = 'loud'"),
    ("BEANS = [{'core': 'apps.pod_beans.greet'}]\nraise ValueError('bad')",
     "raised ValueError: bad"),
    ("BEANS = [", "line 1"),
])
def test_bad_config_file_is_one_line_and_exit_2(tmp_path: Path, text: str,
                                                 message: str) -> None:
    (tmp_path / "config.py").write_text(text + "\n")
    line = assert_one_line_error(run_pod("-c", str(tmp_path / "config.py")))
    assert message in line, line


def test_blocked_loop_detector_names_the_blocking_line() -> None:
    result = run_pod("apps.pod_beans.blocker:seconds=0.5", "--blocked-loop-threshold", "0.1")
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout[index_of(result.stdout, "Event loop blocked for more than"):]
    assert "in blocker\n    time.sleep(seconds)" in report
    assert result.stdout.count("Event loop blocked") == 1


def test_beans_import_from_the_current_directory_as_with_the_installed_script(
        tmp_path: Path) -> None:
    # `python -P` leaves the current directory off sys.path, as the `qactuar`
    # console script does (`python -m` would put it there and hide the bug).
    (tmp_path / "local_bean.py").write_text("async def hello():\n    print('BEAN local')\n")
    (tmp_path / "config.py").write_text("BEANS = [{'core': 'local_bean.hello'}]\n")
    (tmp_path / "elsewhere").mkdir()
    for args, cwd in [(["local_bean.hello"], tmp_path), (["-c", "config.py"], tmp_path),
                      (["--app-dir", "..", "local_bean.hello"], tmp_path / "elsewhere")]:
        result = subprocess.run([sys.executable, "-P", "-m", "qactuar", "pod", "run", *args],
                                env=child_env(**script_env()), cwd=cwd,
                                capture_output=True, text=True,
                                timeout=15)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "BEAN local" in result.stdout
