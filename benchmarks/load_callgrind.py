"""Instructions per request of `qactuar load`, counted by callgrind.

The benchmarks' `limit` server (never under valgrind) answers; `python -m
qactuar.load -n N ...` runs under `valgrind --tool=callgrind` with
PYTHONHASHSEED=0 for two values of N, and the script prints

    (Ir(N2) - Ir(N1)) / (N2 - N1)

so start-up, imports and shutdown cancel out and what is left is the tool's
cost of one request (event loop included), plus Ir(N1) - N1 x that: the fixed
cost of a run (start-up).  Instruction counts repeat to a fraction of a
percent on a busy shared machine, unlike CPU-time figures.

    python -m benchmarks.load_callgrind                    # --h1 -c 64
    python -m benchmarks.load_callgrind -- --h1 -c 16 -m 16
    python -m benchmarks.load_callgrind --keep /tmp/cg     # keep the profiles
    python -m benchmarks.load_callgrind --ws -- -c 100 --ws-message-size 64
                                   # WebSocket echo (a Qactuar server's ws_echo app)

It measures whatever build the interpreter imports (set QACTUAR_PURE_PYTHON=1
for pure Python).  Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.load_speed import start
from benchmarks.process import free_port


def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out_file}")


def measure(requests: int, url: str, args: list[str], workdir: Path) -> int:
    """Ir of one `qactuar load -n requests` run."""
    out_file = workdir / f"callgrind.{requests}.out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                           sys.executable, "-m", "qactuar.load", "-n", str(requests), *args,
                           url], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"qactuar load failed under valgrind:\n{done.stdout}\n{done.stderr}")
    return total_instructions(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[5000, 25000],
                        metavar=("N1", "N2"), help="the two request counts")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this folder")
    parser.add_argument("--ws", action="store_true",
                        help="WebSocket echo against Qactuar's ws_echo app, not the limit server")
    parser.add_argument("load_args", nargs="*", default=["--h1", "-c", "64"],
                        help="qactuar load's options (after --)")
    args = parser.parse_args()
    port = free_port()
    if args.ws:
        server = start([sys.executable, "-m", "qactuar", "benchmarks.apps:ws_echo", "--port",
                        str(port), "--no-access-log", "--ws-ping-interval", "0"], port)
    else:
        server = start([sys.executable, "-m", "benchmarks.limit_server", "--port", str(port)],
                       port)
    try:
        with tempfile.TemporaryDirectory() as folder:
            workdir = args.keep or Path(folder)
            workdir.mkdir(parents=True, exist_ok=True)
            url = f"{'ws' if args.ws else 'http'}://127.0.0.1:{port}/"
            first, second = args.counts
            low = measure(first, url, args.load_args, workdir)
            high = measure(second, url, args.load_args, workdir)
    finally:
        server.terminate()
        server.wait(10)
    per_request = (high - low) / (second - first)
    print(f"qactuar load {' '.join(args.load_args)}: {per_request:,.0f} Ir per request, "
          f"{low - per_request * first:,.0f} Ir fixed (start-up, imports, shutdown)")


if __name__ == "__main__":
    main()
