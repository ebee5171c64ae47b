"""Server processes for a benchmark: start pinned, wait until ready, measure RSS, stop.

A server runs in its own session (process group) under `taskset`, with a
high open-files limit, its stderr in a log file under `results/logs/`.
This module owns process lifetime only; it must not know what a scenario
measures.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

from benchmarks import tls_cert
from benchmarks.servers import ONE_WORKER, ServerSpec, Variant

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = Path(__file__).resolve().parent / "results" / "logs"
NOFILE = 20000
READY_TIMEOUT = 30.0


class ServerFailed(RuntimeError):
    """A server did not start, died, or answered wrongly."""


def cpu_list(text: str) -> list[int]:
    """The CPUs of a taskset-style list: "1", "1,3", "2-5"."""
    cpus: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


def free_port() -> int:
    """An ephemeral TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def raise_nofile(wanted: int = NOFILE) -> int:
    """Raise this process's soft open-files limit (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def child_env(source: Path | None = None) -> dict[str, str]:
    """The servers' environment: the benchmarks importable (from `source` when given, a
    commit's worktree, else this checkout), no stray QACTUAR_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QACTUAR_")}
    paths = [str(source) if source else None, str(ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def byte_compile(python: str, source: Path | None = None) -> None:
    """Write the bytecode of this checkout's Python files (qactuar/, benchmarks/) for `python`.

    The servers import qactuar and the benchmark apps from this checkout (PYTHONPATH),
    while the peers come from site-packages, where pip wrote their bytecode at install.
    Under PYTHONDONTWRITEBYTECODE=1 (set in this machine's sessions) nothing writes it for the
    checkout, so every start compiled qactuar's sources again (about 18 ms): a cost
    neither `pip install .` nor a second run outside that setting has. Best effort: a
    read-only checkout is measured as it is.
    """
    root = source or ROOT
    subprocess.run([python, "-m", "compileall", "-q", str(root / "qactuar"),
                    str(root / "benchmarks")], cwd=root, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=300)


class ServerProcess:
    """One running server: `with ServerProcess(...) as server:` stops it on any exit."""

    def __init__(self, spec: ServerSpec, app: str, cpu: str, label: str,
                 variant: Variant = ONE_WORKER) -> None:
        self.spec = spec
        self.app = app
        self.variant = variant
        self.cpu = cpu
        self.port = free_port()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{spec.name}-{label}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        if port_in_use(self.port):
            raise ServerFailed(f"{self.spec.name}: port {self.port} is already in use")
        command = ["taskset", "-c", self.cpu,
                   *self.spec.command(self.app, self.port, self.variant)]
        with open(self.log_path, "wb") as log:
            self.started_at = time.perf_counter()
            # `python -m` puts its working directory first on sys.path: a worktree's
            # server (--before) must start in it to import its own qactuar.
            source = self.spec.source
            self.popen = subprocess.Popen(command, cwd=source or ROOT, env=child_env(source),
                                          stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, path: str = "/", timeout: float = READY_TIMEOUT) -> float:
        """Poll until a request is answered 200; return seconds since Popen."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                status = get_status(self.port, path, timeout=1.0, tls=self.variant.tls)
            except OSError:
                status = None
            if status == 200:
                return time.perf_counter() - self.started_at
            if status is not None:
                raise ServerFailed(f"{self.spec.name}: readiness request got status {status}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{self.spec.name}: not ready after {timeout:.0f}s"
                                   f"{self.log_tail()}")
            time.sleep(0.005)

    def wait_listening(self, workers: int, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the log holds the server's listening line once per worker.

        For a server with several workers, an answer proves only that one of them
        is up; its per-worker log line proves all are. No-op where none is known.
        """
        line = self.spec.listening_line
        if line is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                seen = self.log_path.read_text(errors="replace").count(line)
            except OSError:
                seen = 0
            if seen >= workers:
                return
            if time.monotonic() > deadline:
                raise ServerFailed(f"{self.spec.name}: {seen} of {workers} workers logged "
                                   f"{line!r} after {timeout:.0f}s{self.log_tail()}")
            time.sleep(0.01)

    def check_alive(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            code = None if self.popen is None else self.popen.returncode
            raise ServerFailed(f"{self.spec.name}: exited with status {code}{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n    " + "\n    ".join(text)) if text else ""

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its descendants so far.

        Includes children that have exited and been reaped (postfork's
        per-connection children): their time is in their parent's cutime/cstime.
        """
        assert self.popen is not None
        return sum(_cpu_ticks(pid) for pid in _process_tree(self.popen.pid)) / _TICKS

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its descendants (launcher + workers)."""
        assert self.popen is not None
        return sum(_vm_rss(pid) for pid in _process_tree(self.popen.pid))

    def stop(self) -> None:
        """SIGTERM the server's process group; SIGKILL it if it has not exited in 5 s."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        except ProcessLookupError:
            pass
        # Workers that outlived their launcher are in the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def get_status(port: int, path: str, timeout: float, tls: bool = False) -> int:
    connection = (http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                              context=tls_cert.client_context())
                  if tls else http.client.HTTPConnection("127.0.0.1", port, timeout=timeout))
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _process_tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return pids


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # utime, stime, and cutime, cstime: reaped children's, who are no longer in the tree.
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def _vm_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
