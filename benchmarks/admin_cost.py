"""What the admin plane costs per request, in instructions (callgrind), not wall-clock time.

Runs the hello-world server (async model) under `valgrind --tool=callgrind` twice per
setting, with a small and a large number of keep-alive requests on one connection; the
difference of the two totals divided by the difference of the request counts is the
cost per request, without start-up and shutdown.  A scrape of /metrics is measured
apart (a run scraped every second minus the same run unscraped, per scrape) and then
weighed at a native request rate: under callgrind a second holds some 70 times fewer
requests than natively, so scraping once per callgrind-second would overstate it.

    python -m benchmarks.admin_cost [--small 1000] [--large 6000]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"port {port} never opened")


def _scrape(port: int, stop: threading.Event, count: list[int]) -> None:
    while not stop.wait(1.0):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
        count[0] += 1


def instructions(requests: int, admin: bool, scrape: bool = False) -> tuple[int, int]:
    """Total instructions of one server run serving `requests` requests; and scrapes made."""
    port, admin_port = _free_port(), _free_port()
    out = Path(tempfile.mkdtemp()) / "callgrind.out"
    args = [sys.executable, "-m", "qactuar", "apps:hello", "--app-dir", str(ROOT / "benchmarks"),
            "--port", str(port), "--no-access-log"]
    if admin:
        args += ["--admin", "--admin-port", str(admin_port)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    _wait_port(port)
    stop, scrapes = threading.Event(), [0]
    scraper = threading.Thread(target=_scrape, args=(admin_port, stop, scrapes))
    if scrape:
        _wait_port(admin_port)
        scraper.start()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(requests):
            sock.sendall(REQUEST)
            data = b""
            while not data.endswith(b"Hello, world!"):
                data += sock.recv(65536)
    stop.set()
    if scrape:
        scraper.join()
    server.send_signal(signal.SIGTERM)
    server.wait(120)
    text = out.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    assert match, "no totals in the callgrind output"
    return int(match.group(1)), scrapes[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=6000)
    parser.add_argument("--native-rate", type=float, default=25_000,
                        help="hello-world requests per second natively, to weigh a scrape")
    options = parser.parse_args()
    per_request = {}
    totals = {}
    for admin in (False, True):
        small, _ = instructions(options.small, admin)
        large, _ = instructions(options.large, admin)
        totals[admin] = large
        per_request[admin] = (large - small) / (options.large - options.small)
        print(f"admin {'on ' if admin else 'off'}: {per_request[admin]:,.0f} instructions per "
              f"request ({options.small} and {options.large} requests, no scrapes)")
    hot_path = per_request[True] / per_request[False] - 1
    print(f"hot path with the admin plane on: {hot_path:+.2%} instructions per request")
    scraped, scrapes = instructions(options.large, True, scrape=True)
    per_scrape = (scraped - totals[True]) / max(1, scrapes)
    weighed = per_scrape / options.native_rate / per_request[False]
    print(f"one /metrics scrape: {per_scrape:,.0f} instructions ({scrapes} scrapes in a "
          f"{options.large}-request run); scraped every second at "
          f"{options.native_rate:,.0f} req/s that is {weighed:+.3%} per request")
    print(f"admin plane on and scraped every second: {hot_path + weighed:+.2%}")


if __name__ == "__main__":
    main()
