"""Instructions per `Client.get()` (one task), HTTP/1.1 or HTTP/2, counted by callgrind.

A tiny fixed-reply server (this script with `--serve`, uvloop, never under
valgrind) answers every GET with a 13-byte body, over HTTP/1.1 or h2c (HTTP/2
with prior knowledge: SETTINGS, then a HEADERS and a DATA frame per request);
the client process (this script with `--client N URL`) runs under `valgrind
--tool=callgrind` with PYTHONHASHSEED=0 and awaits `client.get(url)` N times
from one task, reading `status_code` and `content` like `benchmarks/client.py`
does.  It does that for two values of N and prints

    (Ir(N2) - Ir(N1)) / (N2 - N1)

so start-up, imports and shutdown cancel out and what is left is the client's
cost of one request (event loop included).  Instruction counts repeat to a
fraction of a percent on a busy shared machine, unlike CPU-time figures.
`--bare` measures benchmarks/client.py's `bare` client instead (uvloop +
httptools + one future per request, HTTP/1.1): the floor of the method.

    python -m benchmarks.client_callgrind                 # HTTP/1.1, N = 2000 and 6000
    python -m benchmarks.client_callgrind --protocol h2
    python -m benchmarks.client_callgrind --bare
    python -m benchmarks.client_callgrind --tasks 50
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
# HTTP/2: our SETTINGS (none changed) and the ACK of the client's; a response is HEADERS
# (:status 200, content-type and content-length as literals) and DATA ending the stream.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
H2_BLOCK = b"\x88" + b"\x0f\x10\x0atext/plain" + b"\x0f\x0d\x0213"
H2_BODY = b"Hello, world!"


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


class _FixedH2Reply(asyncio.Protocol):
    """h2c with prior knowledge, for a client that sends GETs without bodies."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""
        self.preface = False

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.preface:
            if len(buffer) < len(H2_PREFACE):
                self.buffer = buffer
                return
            buffer = buffer[len(H2_PREFACE):]
            self.preface = True
            self.transport.write(H2_SETTINGS)  # type: ignore[attr-defined]
        out = []
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            kind, flags, stream = buffer[3], buffer[4], buffer[5:9]
            if kind == 1 and flags & 0x1:  # HEADERS ending the stream: a GET
                out.append(len(H2_BLOCK).to_bytes(3, "big") + b"\x01\x04" + stream + H2_BLOCK)
                out.append(len(H2_BODY).to_bytes(3, "big") + b"\x00\x01" + stream + H2_BODY)
            elif kind == 6 and not flags & 0x1:  # PING
                out.append(buffer[:4] + b"\x01" + buffer[5:9 + length])
            buffer = buffer[9 + length:]
        self.buffer = buffer
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


def serve(protocol: str) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        factory = _FixedH2Reply if protocol == "h2" else _FixedReply
        server = await loop.create_server(factory, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)  # the harness waits on it
        await asyncio.Event().wait()

    uvloop.run(main())


# -- the measured client ----------------------------------------------------------------
def run_client(requests: int, url: str, kind: str, tasks: int) -> None:
    import uvloop

    async def main() -> None:
        if kind == "bare":
            from benchmarks.client import make_bare

            get, close = await make_bare("h1", tasks)

            async def task(count: int) -> None:
                for _ in range(count):
                    if await get(url) != b"Hello, world!":
                        raise SystemExit("unexpected answer")
        else:
            from qactuar.client import Client

            client = Client(http2="prior-knowledge" if kind == "h2" else False)
            close = client.aclose

            async def task(count: int) -> None:
                for _ in range(count):
                    response = await client.get(url)
                    if response.status_code != 200 or response.content != b"Hello, world!":
                        raise SystemExit(f"unexpected answer {response.status_code}")
        try:
            await asyncio.gather(*[task(requests // tasks) for _ in range(tasks)])
        finally:
            await close()

    uvloop.run(main())


# -- the harness ------------------------------------------------------------------------
def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out_file}")


def start_server(protocol: str) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.client_callgrind", "--serve",
                               "--protocol", protocol], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()  # type: ignore[union-attr]
    if not line.strip().isdigit():
        server.kill()
        raise SystemExit("the fixed-reply server did not start")
    return server, int(line)


def measure(requests: int, url: str, kind: str, tasks: int, workdir: Path) -> int:
    out_file = workdir / f"callgrind.{requests}.out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                    sys.executable, "-m", "benchmarks.client_callgrind", "--client",
                    str(requests), url, "--kind", kind, "--tasks", str(tasks)], env=env,
                   check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return total_instructions(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[2000, 6000],
                        metavar=("N1", "N2"), help="the two request counts")
    parser.add_argument("--protocol", choices=["h1", "h2"], default="h1",
                        help="HTTP/1.1 or h2c (HTTP/2 with prior knowledge)")
    parser.add_argument("--bare", action="store_true",
                        help="measure the `bare` uvloop + httptools client (HTTP/1.1)")
    parser.add_argument("--tasks", type=int, default=1,
                        help="concurrent tasks on one client (each sends N / tasks requests; "
                             "with more than one, counts vary a little with timing)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, metavar=("N", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="h1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare and args.protocol != "h1":
        parser.error("the bare client speaks HTTP/1.1 only")
    if args.serve:
        serve(args.protocol)
        return
    if args.client:
        run_client(int(args.client[0]), args.client[1], args.kind, args.tasks)
        return
    low, high = sorted(args.counts)
    kind = "bare" if args.bare else args.protocol
    pure = os.environ.get("QACTUAR_PURE_PYTHON") == "1"
    what = "the bare client" if args.bare else f"qactuar.client over {args.protocol}"
    what += f", {args.tasks} task{'s' if args.tasks > 1 else ''}"
    print(f"measuring {what} ({'pure Python' if pure else 'compiled build if any'})")
    with tempfile.TemporaryDirectory(prefix="qactuar-client-callgrind-") as folder:
        workdir = Path(folder)
        server, port = start_server(args.protocol)
        try:
            url = f"http://127.0.0.1:{port}/"
            low_ir = measure(low, url, kind, args.tasks, workdir)
            high_ir = measure(high, url, kind, args.tasks, workdir)
        finally:
            server.kill()
            server.wait()
    print(f"Ir({low}) = {low_ir:,}  Ir({high}) = {high_ir:,}")
    print(f"instructions per request: {(high_ir - low_ir) / (high - low):,.0f}")


if __name__ == "__main__":
    main()
