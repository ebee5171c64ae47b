"""Instructions per request under h2load (HTTP/2, or HTTP/1.1 with --h1), counted by callgrind.

The HTTP/2 twin of `callgrind_hello.py`: runs the server (async model,
`benchmarks.apps:hello`, access log off) under `valgrind --tool=callgrind`
with PYTHONHASHSEED=0, drives it with h2load (h2c with prior knowledge,
16 connections x 10 concurrent streams, the benchmark scenario's shape) for
two request counts, stops it with SIGTERM and prints

    (Ir(N2) - Ir(N1)) / (N2 - N1)

so start-up, the connections' set-up and shutdown cancel out and what is left
is the server's cost of one request (protocol, HPACK, event loop and app).
The figure moves a little with how h2load's frames happen to be batched into
reads, far less than any requests-per-second run on a shared machine.

Usage, from the project root:

    python benchmarks/callgrind_h2.py                 # N = 2000 and 6000
    python benchmarks/callgrind_h2.py --counts 1000 3000
    python benchmarks/callgrind_h2.py --h1 --app benchmarks.starlette_app:app
    python benchmarks/callgrind_h2.py --server-args="--gc-threshold 0"

`--h1` loads HTTP/1.1 instead, 64 keep-alive connections (`h2load --h1 -c64`, the
HTTP/1.1 scenarios' shape): the cost of a request with 64 in flight, where
`callgrind_hello.py` has one.

It measures whatever build the interpreter imports (compiled or, with
QACTUAR_PURE_PYTHON=1, pure Python) and says which.  Needs valgrind and h2load.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.callgrind_hello import (
    START_DEADLINE,
    connect_when_listening,
    free_port,
    server_under_callgrind,
    total_instructions,
)

CONNECTIONS = 16
STREAMS = 10
H1_CONNECTIONS = 64


def measure(requests: int, workdir: Path, app: str = "benchmarks.apps:hello",
            h1: bool = False, server_args: list[str] | None = None) -> int:
    """Ir of one server run that answers `requests` requests from h2load."""
    port = free_port()
    out_file = workdir / f"callgrind.{requests}.out"
    args = [app, "--host", "127.0.0.1", "--port", str(port), *(server_args or [])]
    shape = (["--h1", "-c", str(H1_CONNECTIONS)] if h1
             else ["-c", str(CONNECTIONS), "-m", str(STREAMS)])
    with server_under_callgrind(args, out_file) as server:
        connect_when_listening(port, server).close()
        load = subprocess.run(
            ["h2load", "-n", str(requests), *shape, f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, timeout=START_DEADLINE, check=False)
        done = re.search(r"(\d+) succeeded", load.stdout)
        if load.returncode != 0 or done is None or int(done.group(1)) != requests:
            raise SystemExit(f"h2load did not get {requests} answers:\n{load.stdout}"
                             f"{load.stderr}")
    return total_instructions(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[2000, 6000],
                        metavar=("N1", "N2"), help="the two request counts (default 2000 6000)")
    parser.add_argument("--app", default="benchmarks.apps:hello",
                        help="the app to serve (default benchmarks.apps:hello)")
    parser.add_argument("--h1", action="store_true",
                        help=f"HTTP/1.1, {H1_CONNECTIONS} connections, instead of HTTP/2")
    parser.add_argument("--server-args", default="",
                        help='more qactuar flags, one string (e.g. "--gc-threshold 0")')
    parser.add_argument("--keep", type=Path, metavar="FOLDER",
                        help="write the callgrind.<N>.out files to FOLDER and keep them")
    args = parser.parse_args()
    low, high = sorted(args.counts)
    build = subprocess.run([sys.executable, "-c", "import qactuar, qactuar._build as b; "
                            "print(qactuar.__file__, '-', b.describe_build())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    print(f"measuring {build}, app {args.app}, {'HTTP/1.1' if args.h1 else 'HTTP/2'}"
          f"{', ' + args.server_args if args.server_args else ''}")
    with tempfile.TemporaryDirectory(prefix="qactuar-callgrind-h2-") as folder:
        workdir = Path(folder) if args.keep is None else args.keep
        workdir.mkdir(parents=True, exist_ok=True)
        extra = args.server_args.split()
        low_ir = measure(low, workdir, args.app, args.h1, extra)
        high_ir = measure(high, workdir, args.app, args.h1, extra)
    per_request = (high_ir - low_ir) / (high - low)
    print(f"Ir({low}) = {low_ir:,}  Ir({high}) = {high_ir:,}")
    print(f"instructions per request: {per_request:,.0f}")


if __name__ == "__main__":
    main()
