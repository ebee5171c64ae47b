"""Instructions per `Client.get()` over HTTP/1.1 (one task), counted by callgrind.

A tiny fixed-reply server (this script with `--serve`, uvloop, never under
valgrind) answers every GET with a 13-byte body; the client process (this
script with `--client N URL`) runs under `valgrind --tool=callgrind` with
PYTHONHASHSEED=0 and awaits `client.get(url)` N times from one task, reading
`status_code` and `content` like `benchmarks/client.py` does.  It does that for
two values of N and prints

    (Ir(N2) - Ir(N1)) / (N2 - N1)

so start-up, imports and shutdown cancel out and what is left is the client's
cost of one request (event loop included).  Instruction counts repeat to a
fraction of a percent on a busy shared machine, unlike CPU-time figures.

    python -m benchmarks.client_callgrind                 # N = 2000 and 6000
    python -m benchmarks.client_callgrind --counts 1000 3000

It measures whatever build the interpreter imports (set QACTUAR_PURE_PYTHON=1
for pure Python).  Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPLY = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n"
         b"date: Fri, 04 Dec 2026 17:00:00 GMT\r\nserver: fixed\r\n\r\nHello, world!")
HEAD_END = b"\r\n\r\n"


# -- the fixed-reply server (GETs without a body only, pipelining-safe) -----------------
class _FixedReply(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        count = buffer.count(HEAD_END)
        if count:
            self.transport.write(REPLY * count)  # type: ignore[attr-defined]
            buffer = buffer[buffer.rindex(HEAD_END) + 4:]
        self.buffer = buffer


def serve() -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FixedReply, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)  # the harness waits on it
        await asyncio.Event().wait()

    uvloop.run(main())


# -- the measured client ----------------------------------------------------------------
def run_client(requests: int, url: str) -> None:
    import uvloop

    from qactuar.client import Client

    async def main() -> None:
        async with Client(http2=False) as client:
            for _ in range(requests):
                response = await client.get(url)
                if response.status_code != 200 or response.content != b"Hello, world!":
                    raise SystemExit(f"unexpected answer {response.status_code}")

    uvloop.run(main())


# -- the harness ------------------------------------------------------------------------
def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out_file}")


def start_server() -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.client_callgrind", "--serve"],
                              stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()  # type: ignore[union-attr]
    if not line.strip().isdigit():
        server.kill()
        raise SystemExit("the fixed-reply server did not start")
    return server, int(line)


def measure(requests: int, url: str, workdir: Path) -> int:
    out_file = workdir / f"callgrind.{requests}.out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                    sys.executable, "-m", "benchmarks.client_callgrind", "--client",
                    str(requests), url], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return total_instructions(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[2000, 6000],
                        metavar=("N1", "N2"), help="the two request counts")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, metavar=("N", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.client:
        run_client(int(args.client[0]), args.client[1])
        return
    low, high = sorted(args.counts)
    pure = os.environ.get("QACTUAR_PURE_PYTHON") == "1"
    print(f"measuring the client ({'pure Python' if pure else 'compiled build if any'})")
    with tempfile.TemporaryDirectory(prefix="qactuar-client-callgrind-") as folder:
        workdir = Path(folder)
        server, port = start_server()
        try:
            url = f"http://127.0.0.1:{port}/"
            low_ir = measure(low, url, workdir)
            high_ir = measure(high, url, workdir)
        finally:
            server.kill()
            server.wait()
    print(f"Ir({low}) = {low_ir:,}  Ir({high}) = {high_ir:,}")
    print(f"instructions per request: {(high_ir - low_ir) / (high - low):,.0f}")


if __name__ == "__main__":
    main()
