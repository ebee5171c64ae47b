"""How to start each server under test: its command line and what it can serve.

Every server runs ONE worker (process) serving the app named by the scenario,
with access logs off and keep-alive idle timeouts long enough (300 s) for the
idle-connection measurement, unless the scenario's `Variant` asks for more
workers or for WebSockets. This module owns command lines only; starting,
pinning and stopping processes is `process.py`'s job.

Fair single-worker settings per server:
- qactuar: the default `async` model (one process, uvloop, httptools).
- uvicorn: `--loop uvloop --http httptools`, one process (no `--workers`).
- granian: `--workers 1 --runtime-threads 1 --blocking-threads 1 --loop uvloop`.
  Granian runs its Rust I/O runtime beside the Python thread: one runtime
  thread (its default) and one blocking thread (the one thread that runs
  Python code, its default for ASGI) is its single-core setting. The runtime
  mode stays at its default `auto`, which for ASGI picks the multi-threaded
  Tokio runtime (here with that one thread). `--backlog 2048` as the others
  use, `--backpressure` see below. Its worker is a child
  process of the launcher; both are pinned to the server CPU.
- hypercorn: `--workers 1 --worker-class uvloop`.
- daphne: one Twisted process (it has no worker option).
- qactuar-postfork: qactuar `--model postfork` (one child process forked per
  connection); only in the postfork-connect scenario.
- limit: `limit_server.py`, a fixed-reply uvloop protocol (hello-sized and
  10 KiB replies only: it cannot read a body or stream).

With `Variant.workers` > 1 (the prefork scenario): qactuar `--model prefork
--workers N`, uvicorn `--workers N`, granian `--workers N` (each worker keeps
the one-runtime-thread, one-blocking-thread setting above).
With `Variant.websocket` (ws-echo), keep-alive pings are off wherever there is
a switch: qactuar `--ws-ping-interval 0`; uvicorn `--ws websockets-sansio`
(what its `--ws auto` picks when `websockets` is installed) with
`--ws-ping-interval 0`; granian `--ws` (its `--help` lists no WebSocket
ping option: nothing to turn off).
With `Variant.http2` (the h2 scenario: h2c with prior knowledge on the plain
port, HTTP/1.1 still answered there for the readiness poll): qactuar
`--http2 on` (its default `auto` would quietly fall back to HTTP/1.1 without
the `h2` package); granian `--http auto` (`--http 2` would refuse the
HTTP/1.1 readiness poll); hypercorn serves h2c on a plain port with its
defaults, plus `-c hypercorn_h2.toml`, which lifts `keep_alive_max_requests`
(default 1000: it closes a connection after about 1000 streams; h2load -D
neither reconnects nor counts an error, so the load would silently fade).
With `Variant.tls` (h2-tls: HTTP/2 by ALPN over TLS) every server serves
`tls_cert`'s certificate and key: qactuar `--ssl-cert-path/--ssl-key-path`,
granian `--ssl-certificate/--ssl-keyfile` (its default minimum TLS 1.3, which
the others negotiate too with h2load), hypercorn `--certfile/--keyfile`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmarks import tls_cert

KEEP_ALIVE_SECONDS = "300"
# Granian admits at most --backpressure connections at once (default backlog/workers
# = 1024); above the idle-memory scenario's 5,000 so that it can be measured at all.
BACKPRESSURE = 8192
HYPERCORN_H2_CONFIG = Path(__file__).resolve().parent / "hypercorn_h2.toml"


@dataclass(frozen=True)
class Variant:
    """What a scenario asks of every server beyond serving its app."""

    workers: int = 1
    websocket: bool = False
    http2: bool = False  # h2c with prior knowledge on the plain port
    tls: bool = False  # https with tls_cert's certificate (with http2: ALPN h2)


ONE_WORKER = Variant()


@dataclass(frozen=True)
class ServerSpec:
    """One server: how to build its command line for an app, a port and a variant."""

    name: str
    command: Callable[[str, int, Variant], list[str]]
    # The Python distribution whose version is recorded (None: not a package).
    package: str | None
    # Scenario names the server cannot run (limit: anything it cannot fake).
    skips: frozenset[str] = field(default_factory=frozenset)
    # When set, the only scenarios the server runs in (a variant of another server).
    only: frozenset[str] | None = None
    # A line the server logs once per worker when that worker listens (None: not known).
    listening_line: str | None = None
    # The server this one is a variant of, for the scenarios' server lists (None: itself):
    # "qactuar" for --pythons' "qactuar (3.12)", "granian" for "granian (3.12)" and so on.
    family: str | None = None
    # The checkout its qactuar and the benchmark apps are imported from, first on
    # PYTHONPATH (None: this one); --before's rows run a commit's worktree.
    source: Path | None = None

    @property
    def base(self) -> str:
        return self.family or self.name


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


# The interpreter the qactuar servers run under (`--qactuar-python`): the peers run
# under the driver's own (and, with --pythons, also under each version's).
qactuar_python = sys.executable


def _qactuar(app: str, port: int, variant: Variant, python: str | None = None) -> list[str]:
    command = [python or qactuar_python, "-m", "qactuar", app, "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--keep-alive-timeout",
               KEEP_ALIVE_SECONDS]
    if variant.workers > 1:
        command += ["--model", "prefork", "--workers", str(variant.workers)]
    if variant.websocket:
        command += ["--ws-ping-interval", "0"]
    if variant.http2:
        command += ["--http2", "on"]
    if variant.tls:
        command += ["--ssl-cert-path", str(tls_cert.CERT), "--ssl-key-path", str(tls_cert.KEY)]
    return command


def _qactuar_postfork(app: str, port: int, variant: Variant) -> list[str]:
    return [*_qactuar(app, port, variant), "--model", "postfork"]


def _uvicorn(app: str, port: int, variant: Variant) -> list[str]:
    command = _python("-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                      "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                      "--log-level", "warning", "--timeout-keep-alive", KEEP_ALIVE_SECONDS)
    if variant.workers > 1:
        command += ["--workers", str(variant.workers)]
    if variant.websocket:
        command += ["--ws", "websockets-sansio", "--ws-ping-interval", "0"]
    return command


def _granian(app: str, port: int, variant: Variant) -> list[str]:
    return _python("-m", "granian", "--interface", "asgi",
                   "--http", "auto" if variant.http2 else "1",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", str(variant.workers),
                   "--runtime-threads", "1", "--blocking-threads", "1", "--loop", "uvloop",
                   "--backlog", "2048", "--backpressure", str(BACKPRESSURE),
                   "--ws" if variant.websocket else "--no-ws", "--no-access-log",
                   "--log-level", "warning",
                   *(["--ssl-certificate", str(tls_cert.CERT), "--ssl-keyfile", str(tls_cert.KEY)]
                     if variant.tls else []), app)


def _hypercorn(app: str, port: int, variant: Variant) -> list[str]:
    return _python("-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                   "--worker-class", "uvloop", "--keep-alive", KEEP_ALIVE_SECONDS,
                   "--log-level", "warning",
                   *(["-c", str(HYPERCORN_H2_CONFIG)] if variant.http2 else []),
                   *(["--certfile", str(tls_cert.CERT), "--keyfile", str(tls_cert.KEY)]
                     if variant.tls else []), app)


def _daphne(app: str, port: int, variant: Variant) -> list[str]:
    return _python("-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app)


# The limit server ignores the app: it fakes the reply of the scenario's app by size.
LIMIT_BODY_SIZES = {"benchmarks.apps:hello": 13, "benchmarks.apps:ten_kib": 10240}


def _limit(app: str, port: int, variant: Variant) -> list[str]:
    return _python("-m", "benchmarks.limit_server", "--port", str(port),
                   "--body-size", str(LIMIT_BODY_SIZES[app]))


SERVERS: dict[str, ServerSpec] = {spec.name: spec for spec in [
    ServerSpec("qactuar", _qactuar, "qactuar", listening_line="Listening on"),
    ServerSpec("qactuar-postfork", _qactuar_postfork, "qactuar",
               only=frozenset({"postfork-connect"}), listening_line="Listening on"),
    ServerSpec("uvicorn", _uvicorn, "uvicorn"),
    ServerSpec("granian", _granian, "granian"),
    ServerSpec("hypercorn", _hypercorn, "hypercorn"),
    ServerSpec("daphne", _daphne, "daphne"),
    ServerSpec("limit", _limit, None,
               frozenset({"echo", "stream", "starlette", "fastapi", "django", "static-file"})),
]}

# The peers that --pythons also runs under each interpreter beside qactuar: a version's
# rows then compare servers on the same Python, since an app's own code (Starlette's,
# Django's) costs what that interpreter makes it cost whichever server calls it.
PEERS_PER_PYTHON = ("granian", "limit")


def version_row(base: str, version: str) -> str:
    """The row name of server `base` under Python `version` (--pythons): "granian (3.12)"."""
    return f"{base} ({version})"


def add_server_under(base: str, name: str, python: str) -> ServerSpec:
    """Register server `base` run by `python` instead of the driver's interpreter as the
    server `name` (--pythons: "qactuar (3.12)", "granian (3.12)").  Every command line
    here starts with the interpreter, which is all that changes."""
    spec = SERVERS[base]

    def command(app: str, port: int, variant: Variant) -> list[str]:
        return [python, *spec.command(app, port, variant)[1:]]

    SERVERS[name] = replace(spec, name=name, command=command, family=base)
    return SERVERS[name]


# The baseline every ratio is computed against.
BASELINE = "uvicorn"
