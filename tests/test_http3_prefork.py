"""HTTP/3 with four prefork workers: every connection reaches the worker that owns it.

Fifty fresh connections, none failing; a worker killed and replaced while
connections on the others go on; and clients that move to a new port (a new
4-tuple, so often a different worker's lane), whose packets are forwarded to
the owner by the worker named in the connection ID.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, wait_until, write_tls_files

pytest.importorskip("aioquic")
from h3_client import H3Client, h3_connect

QUIC_LINE = re.compile(r"HTTP/3 \(QUIC\) on udp://([\d.]+):(\d+)")
ADMIN_LINE = re.compile(r"Admin plane on http://([\d.]+):(\d+)")


@pytest.fixture
def prefork_server(tmp_path: Path):
    tls = write_tls_files(tmp_path)
    process = ServerProcess(
        ["apps.h3_app:app", "--host", "127.0.0.1", "--port", "0", "--model", "prefork",
         "--workers", "4", "--admin", "--admin-port", "0", "--no-access-log"],
        env={"QACTUAR_QUIC_BIND": "127.0.0.1:0", "QACTUAR_SSL_CERT_PATH": str(tls["cert"]),
             "QACTUAR_SSL_KEY_PATH": str(tls["key"])})
    wait_until(lambda: len(re.findall(QUIC_LINE, process.output)) == 4, 20, "four workers")
    port = int(process.wait_for_log(QUIC_LINE).group(2))
    yield process, port, str(tls["ca"])
    assert process.stop() == 0


async def fetch_pid(port: int, ca: str) -> int:
    async with h3_connect("127.0.0.1", port, ca=ca) as client:
        answer = await client.request("GET", "/pid")
        assert answer.status == 200
        return int(answer.body)


async def fresh_connections(port: int, ca: str, count: int) -> list[int]:
    pids: list[int] = []
    for start in range(0, count, 10):  # ten at a time
        pids += await asyncio.gather(*(fetch_pid(port, ca) for _ in range(start,
                                                                           min(count,
                                                                               start + 10))))
    return pids


def forwarded(process: ServerProcess) -> int:
    host, port = process.wait_for_log(ADMIN_LINE).groups()
    text = httpx.get(f"http://{host}:{port}/metrics", timeout=5).text
    match = re.search(r'qactuar_datagram_events_total\{event="quic_forwarded"\} (\d+)', text)
    return int(match.group(1)) if match else 0


def test_fifty_fresh_connections_to_four_workers_none_failing(prefork_server: Any) -> None:
    process, port, ca = prefork_server
    pids = asyncio.run(fresh_connections(port, ca, 50))
    assert len(pids) == 50
    assert len(set(pids)) > 1  # the lanes spread clients over the workers
    assert "Traceback" not in process.output


def test_a_worker_restart_loses_nothing_but_its_own_connections(prefork_server: Any) -> None:
    process, port, ca = prefork_server

    async def go() -> None:
        async with h3_connect("127.0.0.1", port, ca=ca) as kept:
            kept_pid = int((await kept.request("GET", "/pid")).body)
            victims = {pid for pid in await fresh_connections(port, ca, 20) if pid != kept_pid}
            victim = min(victims)
            os.kill(victim, signal.SIGKILL)
            await asyncio.to_thread(process.wait_for_log, rf"Worker pid {victim} .*(killed|"
                                    r"exited|signal)")
            await asyncio.to_thread(
                wait_until, lambda: len(re.findall(QUIC_LINE, process.output)) == 5, 20,
                "the replacement worker")
            pids = await fresh_connections(port, ca, 30)
            assert victim not in pids
            # the connection owned by a surviving worker never noticed
            assert int((await kept.request("GET", "/pid")).body) == kept_pid
    asyncio.run(go())


async def _migrate(client: H3Client) -> None:
    """Move the client to a new local UDP port (a new 4-tuple), as after a NAT rebinding."""
    protocol = client.protocol
    loop = asyncio.get_running_loop()

    class Relay(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            protocol.datagram_received(data, addr)

    # The family aioquic's client uses: IPv6, mapping IPv4 addresses.
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    transport, _ = await loop.create_datagram_endpoint(Relay, sock=sock)
    old = protocol._transport
    protocol._transport = transport
    old.close()


def test_packets_that_reach_another_worker_are_forwarded_to_the_owner(
        prefork_server: Any) -> None:
    process, port, ca = prefork_server

    async def go() -> None:
        for _ in range(6):
            async with h3_connect("127.0.0.1", port, ca=ca) as client:
                owner = int((await client.request("GET", "/pid")).body)
                for _ in range(3):
                    await _migrate(client)
                    answer = await client.request("GET", "/pid")
                    assert answer.status == 200 and int(answer.body) == owner
    asyncio.run(go())
    # 18 moves over four lanes: some landed on another worker's lane and were forwarded
    wait_until(lambda: forwarded(process) > 0, 10, "forwarded packets in /metrics")


def test_reload_drains_old_connections_with_goaway(prefork_server: Any) -> None:
    process, port, ca = prefork_server
    size = 4 * 1024 * 1024

    async def go() -> None:
        async with h3_connect("127.0.0.1", port, ca=ca) as client:
            old_pid = int((await client.request("GET", "/pid")).body)
            stream = client.open_stream("GET", f"/download?n={size}")
            events = client.stream_events(stream)
            head = await anext(events)
            process.send_signal(signal.SIGHUP)
            body = bytearray()
            async with asyncio.timeout(30):
                async for event in events:
                    body += getattr(event, "data", b"")
                    if getattr(event, "stream_ended", False):
                        break
            assert hashlib.sha256(body).hexdigest().encode() == dict(head.headers)[b"x-sha256"]
            async with asyncio.timeout(10):
                while client.protocol.goaway is None:
                    await asyncio.sleep(0.02)
        await asyncio.to_thread(process.wait_for_log, "Reload finished", 30)
        pids = await fresh_connections(port, ca, 20)
        assert old_pid not in pids
    asyncio.run(go())
