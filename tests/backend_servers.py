"""Real database and RPC servers for the client's backend tests, each started privately on
a free port and stopped by the test that made it.

- `PostgresServer`: a private cluster (initdb in a temporary directory) run by
  Debian's PostgreSQL 15 binaries; as root it runs as the `postgres` user (the
  server refuses root), as anyone else as that user.  User `test`, password `1111`.
- `RedisServer`: `redis-server` on a free port, nothing saved; user `alice`
  (password `secret`) besides the password-less default user.
- `MongoServer`: mongoeco's wire-protocol server (a MongoDB that speaks the wire
  protocol) in a Python 3.13 virtual environment (`.venv-mongo`, made on first
  use, or `QACTUAR_MONGO_VENV`), run as a separate process by tests/mongo_server.py.
- `compile_route_guide()` and `RouteGuideServer`: the gRPC route_guide service
  compiled from tests/protos/route_guide.proto with grpcio-tools and served by a
  real grpcio server in the test process.

Every server can be stopped and started again on the same port and data
(`restart()`), for the reconnection tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


class _Process:
    """A daemon process started with `command()`; stop() and start() it again."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        return {}

    def ready(self) -> bool:
        return accepts_connections(self.port)

    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, **self.popen_options())
        if log is not subprocess.DEVNULL:
            log.close()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                text = self.log_path.read_text(errors="replace") if self.log_path else ""
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}): {text}")
            return self.ready()

        wait_until(up, timeout, f"{self.name} on port {self.port}")

    def stop(self, signum: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signum)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class PostgresServer(_Process):
    """A private PostgreSQL cluster; user `test` / `1111`, databases `mydb`."""

    name = "postgres"
    user = "test"
    password = "1111"

    def __init__(self) -> None:
        super().__init__()
        if not (PG_BIN / "initdb").exists():
            pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql)")
        # Not under pytest's tmp_path: as root its parents are closed to other users.
        self.home = Path(tempfile.mkdtemp(prefix="qactuar-pg-"))
        self.run_as = "postgres" if os.geteuid() == 0 else None
        if self.run_as:
            shutil.chown(self.home, self.run_as, self.run_as)
        self.data = self.home / "data"
        self.log_path = self.home / "postgres.log"
        pwfile = self.home / "pw"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            shutil.chown(pwfile, self.run_as, self.run_as)
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.user,
                        f"--pwfile={pwfile}", "-A", "scram-sha-256", "--no-sync",
                        "-E", "UTF8"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, **self.popen_options())
        self.start()
        self.psql("CREATE DATABASE mydb")

    def popen_options(self) -> dict[str, Any]:
        if self.run_as:
            return {"user": self.run_as, "group": self.run_as, "extra_groups": [],
                    "cwd": self.home}
        return {"cwd": self.home}

    def command(self) -> list[str]:
        return [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-k", str(self.home), "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off"]

    def ready(self) -> bool:
        if not accepts_connections(self.port):
            return False
        done = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p",
                               str(self.port), "-U", self.user], capture_output=True)
        return done.returncode == 0

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", dbname,
             "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            env={**os.environ, "PGPASSWORD": self.password}, capture_output=True, text=True,
            timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def stop(self, signum: int = signal.SIGINT) -> None:  # fast shutdown: ends sessions
        super().stop(signum)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


class RedisServer(_Process):
    name = "redis-server"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.dir = tmp_path
        self.log_path = tmp_path / "redis.log"
        self.start()

    def command(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--user", "alice", "on", ">secret", "~*", "&*", "+@all"]


def mongo_python() -> Path:
    """The Python of the mongoeco environment, made (once) when missing."""
    venv = Path(os.environ.get("QACTUAR_MONGO_VENV", ROOT / ".venv-mongo"))
    python = venv / "bin" / "python"
    if python.exists():
        return python
    base = shutil.which("python3.13")
    if base is None:
        found = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3"))
        base = str(found[-1]) if found else None
    if base is None:
        pytest.skip("no Python 3.13 for mongoeco (the MongoDB wire server of the tests)")
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "mongoeco[wire]>=4.11"],
                   check=True)
    return python


class MongoServer(_Process):
    """mongoeco's wire server; `users` as (name, password) pairs turn authentication on."""

    name = "mongoeco"

    def __init__(self, tmp_path: Path, users: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__()
        self.python = mongo_python()
        self.users = users
        self.log_path = tmp_path / f"mongo-{self.port}.log"
        self.start()

    def command(self) -> list[str]:
        users = [f"{name}:{password}" for name, password in self.users]
        return [str(self.python), str(ROOT / "tests" / "mongo_server.py"), str(self.port),
                *users]


# -- gRPC ---------------------------------------------------------------------------------


def compile_route_guide(out: Path) -> tuple[Any, Any]:
    """route_guide_pb2 and route_guide_pb2_grpc, compiled from the .proto into `out`."""
    grpc_tools = pytest.importorskip("grpc_tools")
    from grpc_tools import protoc

    proto_dir = ROOT / "tests" / "protos"
    include = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                        f"--grpc_python_out={out}", str(proto_dir / "route_guide.proto")])
    assert code == 0, "protoc failed on route_guide.proto"
    sys.path.insert(0, str(out))
    try:
        import route_guide_pb2
        import route_guide_pb2_grpc
    finally:
        sys.path.remove(str(out))
    return route_guide_pb2, route_guide_pb2_grpc


FEATURES = [
    ("Berkshire Valley Management Area Trail, Jefferson, NJ, USA", 409146138, -746188906),
    ("Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763),
    ("101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179),
]


class RouteGuideServer:
    """A grpcio server of routeguide.RouteGuide on a free port, in this process.

    GetFeature answers the feature at a point (an empty name elsewhere); at latitude 0
    it aborts NOT_FOUND, at latitude 1 it sleeps 3 s (for timeouts).  A call whose
    metadata has `compress: gzip` is answered with gzip-compressed messages (gRPC
    sends a message uncompressed when that is smaller: the feature at (3, 3) has a
    5,000-byte name, which compresses)."""

    def __init__(self, pb2: Any, pb2_grpc: Any) -> None:
        from concurrent import futures

        import grpc

        self.pb2 = pb2
        self.features = [pb2.Feature(name=name, location=pb2.Point(latitude=lat,
                                                                   longitude=lon))
                         for name, lat, lon in FEATURES]
        self.big_feature = pb2.Feature(name="x" * 5000,
                                       location=pb2.Point(latitude=3, longitude=3))
        self.grpc = grpc
        self.servicer = self._servicer(pb2, pb2_grpc)
        self.port = free_port()
        self.server: Any = None
        self._pb2_grpc = pb2_grpc
        self._futures = futures
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/routeguide.RouteGuide"

    def start(self) -> None:
        server = self.grpc.server(self._futures.ThreadPoolExecutor(max_workers=8))
        self._pb2_grpc.add_RouteGuideServicer_to_server(self.servicer, server)
        bound = server.add_insecure_port(f"127.0.0.1:{self.port}")
        assert bound == self.port
        server.start()
        self.server = server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait(10)
            self.server = None

    def _servicer(self, pb2: Any, pb2_grpc: Any) -> Any:
        grpc = self.grpc
        features = self.features
        big_feature = self.big_feature

        def compress(context: Any) -> None:
            if ("compress", "gzip") in tuple(context.invocation_metadata()):
                context.set_compression(grpc.Compression.Gzip)

        def at(point: Any) -> Any:
            if point == big_feature.location:
                return big_feature
            for feature in features:
                if feature.location == point:
                    return feature
            return pb2.Feature(name="", location=point)

        class Servicer(pb2_grpc.RouteGuideServicer):
            def GetFeature(self, request: Any, context: Any) -> Any:
                compress(context)
                if request.latitude == 0:
                    context.abort(grpc.StatusCode.NOT_FOUND, "no feature at latitude 0")
                if request.latitude == 1:
                    time.sleep(3)
                return at(request)

            def ListFeatures(self, request: Any, context: Any) -> Any:
                compress(context)
                low, high = request.lo, request.hi
                for feature in features:
                    lat, lon = feature.location.latitude, feature.location.longitude
                    if (min(low.latitude, high.latitude) <= lat
                            <= max(low.latitude, high.latitude)
                            and min(low.longitude, high.longitude) <= lon
                            <= max(low.longitude, high.longitude)):
                        yield feature

            def RecordRoute(self, request_iterator: Any, context: Any) -> Any:
                points = list(request_iterator)
                found = sum(1 for point in points if at(point).name)
                return pb2.RouteSummary(point_count=len(points), feature_count=found,
                                        distance=0, elapsed_time=0)

            def RouteChat(self, request_iterator: Any, context: Any) -> Any:
                said: list[Any] = []
                for note in request_iterator:
                    for earlier in said:
                        if earlier.location == note.location:
                            yield earlier
                    said.append(note)

        return Servicer()


@contextlib.contextmanager
def running(server: Any) -> Any:
    try:
        yield server
    finally:
        (server.remove if hasattr(server, "remove") else server.stop)()
