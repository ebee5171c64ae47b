"""Instructions per hello-world request, counted by callgrind (not a wall-clock figure).

Runs the server (async model, `benchmarks.apps:hello` or the app `--app` names,
access log off) under
`valgrind --tool=callgrind` with PYTHONHASHSEED=0, sends N requests one after
another on one keep-alive connection, stops the server with SIGTERM and reads
the total instruction count (Ir) callgrind wrote.  It does that for two values
of N and prints

    (Ir(N2) - Ir(N1)) / (N2 - N1)

so start-up, import and shutdown cancel out and what is left is the cost of
one request (server, event loop and app together).  The figure is exact up to
the odd timer (the Date header is refreshed once a second), so it compares two
builds on the same machine far better than any requests-per-second run on a
shared one.

Usage, from the project root (the server runs from the current directory, so
a checkout of another commit is measured by running this script inside it):

    python benchmarks/callgrind_hello.py            # N = 1000 and 4000
    python benchmarks/callgrind_hello.py --counts 500 2000
    python benchmarks/callgrind_hello.py --app benchmarks.starlette_app:app
    python benchmarks/callgrind_hello.py --keep /tmp/cg   # keep the callgrind.out files

The difference between an app's figure and hello's is what the app (and the
framework under it) costs per request under Qactuar; `callgrind_annotate` on the
kept files says where.

It measures whatever build the interpreter imports (compiled or, with
QACTUAR_PURE_PYTHON=1, pure Python) and says which.  Needs valgrind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
START_DEADLINE = 600.0  # seconds: Python's start-up under callgrind is slow on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connect_when_listening(port: int, server: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before listening")
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            time.sleep(0.2)  # polling for a port to open: nothing to wait on instead
    raise SystemExit("the server did not listen in time")


def read_response(sock: socket.socket, buffer: bytearray) -> None:
    """Read one response with a Content-Length off `sock`; what follows stays in `buffer`."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end]).lower()
            match = re.search(rb"content-length: *(\d+)", head)
            if match is None:
                raise SystemExit(f"response without content-length: {head!r}")
            total = end + 4 + int(match.group(1))
            if len(buffer) >= total:
                if not head.startswith(b"http/1.1 200"):
                    raise SystemExit(f"unexpected response: {head!r}")
                del buffer[:total]
                return
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection")
        buffer += chunk


def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out_file}")


@contextlib.contextmanager
def server_under_callgrind(args: list[str], out_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m qactuar ARGS` (async model, access log off) under callgrind, writing
    `out_file`; stopped with SIGTERM when the block ends (killed if it fails)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
               sys.executable, "-m", "qactuar", *args, "--model", "async", "--no-access-log"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield server
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=START_DEADLINE)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def measure(requests: int, workdir: Path, app: str = "benchmarks.apps:hello") -> int:
    """Ir of one server run that answers `requests` requests on one connection."""
    port = free_port()
    out_file = workdir / f"callgrind.{requests}.out"
    args = [app, "--host", "127.0.0.1", "--port", str(port)]
    with server_under_callgrind(args, out_file) as server, \
            connect_when_listening(port, server) as sock:
        buffer = bytearray()
        for _ in range(requests):
            sock.sendall(REQUEST)
            read_response(sock, buffer)
    return total_instructions(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[1000, 4000],
                        metavar=("N1", "N2"), help="the two request counts (default 1000 4000)")
    parser.add_argument("--app", default="benchmarks.apps:hello",
                        help="the app to serve (default benchmarks.apps:hello); it must "
                             "answer GET / with 200 and a Content-Length")
    parser.add_argument("--keep", type=Path, metavar="FOLDER",
                        help="write the callgrind.<N>.out files to FOLDER and keep them")
    args = parser.parse_args()
    low, high = sorted(args.counts)
    build = subprocess.run([sys.executable, "-c", "import qactuar, qactuar._build as b; "
                            "print(qactuar.__file__, '-', b.describe_build())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    print(f"measuring {build}, app {args.app}")
    with tempfile.TemporaryDirectory(prefix="qactuar-callgrind-") as folder:
        workdir = Path(folder) if args.keep is None else args.keep
        workdir.mkdir(parents=True, exist_ok=True)
        low_ir = measure(low, workdir, args.app)
        high_ir = measure(high, workdir, args.app)
    per_request = (high_ir - low_ir) / (high - low)
    print(f"Ir({low}) = {low_ir:,}  Ir({high}) = {high_ir:,}")
    print(f"instructions per request: {per_request:,.0f}")


if __name__ == "__main__":
    main()
