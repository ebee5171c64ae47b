"""Test fixtures: real `qactuar` processes on ephemeral ports, and raw-socket helpers.

Every server is started through the real command line (`python -m qactuar`)
with `--port 0`; its address is read from the "Listening on" log line.
"""

from __future__ import annotations

import importlib.machinery
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from qactuar._build import COMPILED_MODULES, PURE_PYTHON_ENV_VAR, flag_is_set

TESTS_DIR = Path(__file__).parent
LISTENING = re.compile(r"Listening on (https?)://([\d.]+|\[[0-9a-f:]+\]):(\d+)")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child `qactuar`: no stray QACTUAR_* settings, tests importable.

    QACTUAR_PURE_PYTHON is kept: a pure-Python test run must run pure-Python servers.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QACTUAR_") or k == PURE_PYTHON_ENV_VAR}
    # No empty entry: it would put the child's working directory on sys.path, and a
    # test could then pass by importing from wherever it happened to run.
    paths = [str(TESTS_DIR.parent), str(TESTS_DIR), *env.get("PYTHONPATH", "").split(os.pathsep)]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def can_bind_ipv6(address: str) -> bool:
    """Whether this machine lets a socket bind `address` (e.g. "::1", "::") over IPv6."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True


def wait_until(condition: Callable[[], bool], timeout: float = 10, what: str = "",
               seen: Callable[[], object] | None = None) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds (saying what `seen`
    returns then, if given)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            message = f"timed out after {timeout}s waiting for {what}"
            raise AssertionError(message if seen is None else f"{message}; saw {seen()!r}")
        time.sleep(0.01)


def file_lines(path: Path) -> list[str]:
    """The lines of a file an app writes events to; none while it does not exist."""
    return path.read_text().splitlines() if path.exists() else []


def run_to_exit(command: list[str], env: dict[str, str] | None = None, cwd: Path = TESTS_DIR,
                timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `command` to its exit, its output captured as text."""
    return subprocess.run(command, env=env or child_env(), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def run_qactuar(*args: str, env: dict[str, str] | None = None,
                timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `python -m qactuar ARGS` to its exit (for commands that must not start)."""
    return run_to_exit([sys.executable, "-m", "qactuar", *args], env, timeout=timeout)


def write_tls_files(folder: Path) -> dict[str, Path]:
    """A fresh CA and a server certificate for 127.0.0.1 and localhost, written into
    `folder` as cert.pem (key and chain), key.pem and ca.pem."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {name: folder / f"{name}.pem" for name in ("cert", "key", "ca")}
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    return paths


def write_random_files(folder: Path, large_mib: int) -> dict[str, Path]:
    """The file-body tests' files in `folder`: "one" (1 MiB), "large" (`large_mib` MiB,
    more than the client will read, so it can stop mid-way) and "missing" (not made);
    random bytes, so no compression or dedup along the way can pass for a right answer."""
    one_mib = folder / "one.bin"
    mib = 1024 * 1024
    one_mib.write_bytes(os.urandom(mib))
    large = folder / "large.bin"
    with large.open("wb") as out:
        for _ in range(large_mib):
            out.write(os.urandom(mib))
    return {"one": one_mib, "large": large, "missing": folder / "missing.bin"}


def assert_hello_example_serves(example: str, folder: Path) -> None:
    """The docs' and README's `qactuar.run(app=app)` hello example, run as written but on
    a free port, answers "Hello, world!" and exits 0 on SIGTERM."""
    script = folder / "hello.py"
    script.write_text(example.replace("qactuar.run(app=app)",
                                      "qactuar.run(app=app, host='127.0.0.1', port=0)"))
    server = ServerProcess([], cwd=folder, command=[sys.executable, str(script)])
    try:
        assert httpx.get(f"{server.url}/", timeout=5).text == "Hello, world!"
    finally:
        assert server.stop() == 0


def run_failing_server(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a server that must not come up, with `env` added; it gets a free port in case
    it does."""
    return run_qactuar(*args, "--host", "127.0.0.1", "--port", "0", env=child_env(**env))


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit status 2, exactly one line on stderr, no traceback, never served; return the line."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert "Listening on" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    return lines[0]


class CollectedProcess:
    """A child process whose output (stdout and stderr together) is collected line by
    line as it comes, so a test can wait for a line with a deadline."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None,
                 cwd: str | Path | None = None, pass_fds: tuple[int, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=child_env(**(env or {})), cwd=str(cwd or TESTS_DIR), text=True,
            errors="replace", pass_fds=pass_fds,
        )
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self._lines)

    @property
    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 10,
                     fail_on_exit: bool = False, start: int = 0) -> re.Match[str]:
        """Wait until a printed line matches `pattern`; return the match."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                exited = self.proc.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or (exited and fail_on_exit):
                    raise AssertionError(
                        f"no log line matching {regex.pattern!r} within {timeout}s; "
                        f"output so far:\n" + "\n".join(self._lines))
                self._cond.wait(min(remaining, 0.1))



class ServerProcess(CollectedProcess):
    """A running `qactuar` process and everything it has printed so far."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 cwd: str | Path | None = None, start_timeout: float = 15,
                 command: list[str] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
        """Run `python -m qactuar ARGS`, or `command` (e.g. a script calling run())."""
        super().__init__(command or [sys.executable, "-m", "qactuar", *args], env, cwd,
                         pass_fds)
        self.args = args
        self.scheme = "http"
        self.host = "127.0.0.1"
        self.port = 0
        try:
            match = self.wait_for_log(LISTENING, timeout=start_timeout, fail_on_exit=True)
        except AssertionError:
            self.proc.kill()
            self.proc.wait()
            raise
        self.scheme, host, port = match.group(1), match.group(2), match.group(3)
        self.host = host.strip("[]")
        self.port = int(port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def connect(self, timeout: float = 5) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        return sock

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the server and wait for it to exit; return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            message = f"server did not exit within {timeout}s:\n{self.output}"
            raise AssertionError(message) from None
        self._reader.join(5)
        return code


ServerFactory = Callable[..., ServerProcess]

# The process models a test can run under: the servers its fixtures start get
# these extra arguments (see pytest_generate_tests).
MODEL_ARGS: dict[str, list[str]] = {
    "async": [],
    "prefork": ["--model", "prefork", "--workers", "2"],
    "postfork": ["--model", "postfork"],
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `all_models` (a module's `pytestmark`, or one test) run once per
    process model; `models(...)` names the models for one test; the rest run async.
    (The framework matrix has its own parametrisation point: tests/matrix.py's MODELS.)"""
    if "server_model" not in metafunc.fixturenames:
        return
    only = metafunc.definition.get_closest_marker("models")
    if only is not None:
        models = list(only.args)
    elif metafunc.definition.get_closest_marker("all_models") is not None:
        models = list(MODEL_ARGS)
    else:
        models = ["async"]
    if models != ["async"]:
        metafunc.parametrize("server_model", models, indirect=True)


def stale_compiled_modules() -> list[str]:
    """Compiled modules in the source tree older than their `.py` or any `.pxd`: each would
    silently run instead of the edited source.  Any `.pxd`, not only its own: the modules
    cimport each other's types, and a module built against an old layout crashes."""
    stale = []
    sources = [TESTS_DIR.parent.joinpath(*name.split(".")).with_suffix(".py")
               for name in COMPILED_MODULES]
    layouts = [path.with_suffix(".pxd") for path in sources
               if path.with_suffix(".pxd").exists()]
    newest_layout = max((path.stat().st_mtime for path in layouts), default=0.0)
    for source in sources:
        newest_source = max(source.stat().st_mtime, newest_layout)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            compiled = source.with_name(source.stem + suffix)
            if compiled.exists() and compiled.stat().st_mtime < newest_source:
                stale.append(str(compiled.relative_to(TESTS_DIR.parent)))
    return stale


def pytest_sessionstart(session: pytest.Session) -> None:
    if flag_is_set(PURE_PYTHON_ENV_VAR):
        return  # the compiled modules are not imported
    stale = stale_compiled_modules()
    if stale:
        pytest.exit(f"compiled module(s) older than their .py/.pxd source: {', '.join(stale)}; "
                    "run pip install -e . again (or set QACTUAR_PURE_PYTHON=1)", returncode=2)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "models(*names): run this test under only these "
                                       "process models")
    config.addinivalue_line("markers", "all_models: run this test (or, as a module's "
                                       "pytestmark, every test of the module) under each "
                                       "process model")


@pytest.fixture
def server_model(request: pytest.FixtureRequest) -> str:
    """The process model of the servers this test starts (parametrised per module)."""
    return str(getattr(request, "param", "async"))


def _kill_running(servers: list[ServerProcess]) -> None:
    """Kill what a test left running (a test that passed has stopped its servers itself)."""
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture
def start_server(server_model: str) -> Iterator[ServerFactory]:
    """Start servers with `start_server("module:app", "--flag", ..., env={...})`."""
    started: list[ServerProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None,
                cwd: str | Path | None = None, host: str = "127.0.0.1") -> ServerProcess:
        server = ServerProcess([*args, *MODEL_ARGS[server_model], "--host", host,
                                "--port", "0"], env=env, cwd=cwd)
        started.append(server)
        return server

    yield factory
    _kill_running(started)


Launcher = Callable[[list[str], dict[str, str], Path], ServerProcess]


@pytest.fixture
def launch() -> Iterator[Launcher]:
    """Start a server with `launch(command, env, cwd)` (any command, e.g. a script calling
    run()); it is killed at the end if still up."""
    started: list[ServerProcess] = []

    def factory(command: list[str], env: dict[str, str], cwd: Path) -> ServerProcess:
        server = ServerProcess([], env=env, cwd=cwd, command=command)
        started.append(server)
        return server

    yield factory
    _kill_running(started)


@pytest.fixture(scope="session")
def _basic_servers() -> Iterator[dict[str, ServerProcess]]:
    servers: dict[str, ServerProcess] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def basic_server(server_model: str, _basic_servers: dict[str, ServerProcess]) -> ServerProcess:
    """One shared server per process model running `apps.basic:app` with default settings."""
    server = _basic_servers.get(server_model)
    if server is None:
        server = _basic_servers[server_model] = ServerProcess(
            ["apps.basic:app", *MODEL_ARGS[server_model], "--host", "127.0.0.1", "--port", "0"])
    return server


Response = tuple[bytes, dict[bytes, bytes], bytes]


def read_response(sock: socket.socket, timeout: float = 5, head_only: bool = False) -> Response:
    """Read one HTTP/1.1 response (status line, headers, body) from a raw socket.

    Handles Content-Length, chunked and close-delimited bodies; `head_only`:
    the answer to a HEAD request, which has none.  Returns the status line,
    the headers (lower-cased names; the last value wins) and the body
    (de-chunked).
    """
    sock.settimeout(timeout)
    return _read_response(_SocketReader(sock), head_only)


def parse_responses(data: bytes, head_only: list[bool], closed: bool = True
                    ) -> tuple[list[Response], bytes]:
    """Read one response per item of `head_only` from `data`, as `read_response` reads a
    socket; returns them and the bytes after them.  `closed`: the server has closed the
    connection, so a close-delimited body is complete.  Raises ConnectionError if `data`
    ends before the last response does."""
    reader = _BytesReader(data, closed)
    responses = [_read_response(reader, head) for head in head_only]
    return responses, reader.buffer


def _read_response(reader: _SocketReader | _BytesReader, head_only: bool) -> Response:
    status_line = reader.read_line()
    headers: dict[bytes, bytes] = {}
    while True:
        line = reader.read_line()
        if line == b"":
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    status = status_line.split(b" ")[1]
    if status[:1] == b"1" or head_only or status in (b"204", b"304"):
        return status_line, headers, b""
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size = int(reader.read_line().split(b";")[0], 16)
            if size == 0:
                reader.read_line()
                break
            body += reader.read_exact(size)
            reader.read_line()
        return status_line, headers, body
    if b"content-length" in headers:
        return status_line, headers, reader.read_exact(int(headers[b"content-length"]))
    return status_line, headers, reader.read_all()


class _BytesReader:
    """Line and exact reads from bytes already received."""

    def __init__(self, data: bytes, closed: bool) -> None:
        self.buffer = data
        self.closed = closed

    def read_line(self) -> bytes:
        line, sep, rest = self.buffer.partition(b"\r\n")
        if not sep:
            raise ConnectionError(f"no end of line in {self.buffer!r}")
        self.buffer = rest
        return line

    def read_exact(self, size: int) -> bytes:
        if len(self.buffer) < size:
            raise ConnectionError(f"{size} bytes wanted, {len(self.buffer)} there")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_all(self) -> bytes:
        if not self.closed:
            raise ConnectionError("a close-delimited body before the close")
        data, self.buffer = self.buffer, b""
        return data


# Bytes read past the end of one response, kept for the next read on that socket.
_LEFTOVER: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


class _SocketReader:
    """Line and exact reads from a socket; leftovers stay on the socket object."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer: bytes = _LEFTOVER.get(sock, b"")

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed mid-line: {self.buffer!r}")
        line, _, rest = self.buffer.partition(b"\r\n")
        self._keep(rest)
        return line

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ConnectionError("connection closed mid-body")
        data, rest = self.buffer[:size], self.buffer[size:]
        self._keep(rest)
        return data

    def read_all(self) -> bytes:
        while self._fill():
            pass
        data = self.buffer
        self._keep(b"")
        return data

    def _keep(self, rest: bytes) -> None:
        self.buffer = rest
        _LEFTOVER[self.sock] = rest


def fetch(server: ServerProcess, path: str, timeout: float = 10,
          sock: socket.socket | None = None) -> tuple[int, bytes]:
    """GET `path` on a new connection (or `sock`) with Connection: close; (status, body)."""
    conn = sock or server.connect(timeout)
    with conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        status, _, body = read_response(conn, timeout)
    return int(status.split()[1]), body


def recv_until_closed(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = _LEFTOVER.pop(sock, b"")
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data
