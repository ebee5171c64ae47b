"""The async interface inside a running Starlette app served by Qactuar (an app calling
another service), and a 100 MB body streamed both ways with bounded memory."""

from __future__ import annotations

import resource
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from client_helpers import client_app_server, run
from conftest import ServerProcess
from qactuar.client import Client

__all__ = ["client_app_server"]


@pytest.fixture
def gateway(basic_server: ServerProcess) -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.client_gateway:app", "--host", "127.0.0.1", "--port", "0"],
                           env={"BACKEND_URL": basic_server.url})
    yield server
    server.stop()


def test_app_calls_another_service(gateway: ServerProcess) -> None:
    relayed = httpx.get(f"{gateway.url}/relay?path=/hello", timeout=10)
    missing = httpx.get(f"{gateway.url}/relay?path=/status/404", timeout=10)
    fanned = httpx.get(f"{gateway.url}/fan-out?n=20", timeout=10)
    down = httpx.get(f"{gateway.url}/backend-down", timeout=10)
    assert relayed.status_code == 200 and relayed.text == "Hello, world!"
    assert missing.status_code == 404
    assert fanned.text == ",".join(["slept"] * 20)
    assert down.status_code == 502 and down.json()["code"] == 714
    assert "Traceback" not in gateway.output


@pytest.mark.parametrize("http2", [False, "prior-knowledge"])
def test_100_mb_streamed_both_ways_in_bounded_memory(client_app_server: ServerProcess,
                                                     http2) -> None:
    size = 100 * 1024 * 1024

    async def upload_body():
        chunk = b"u" * 65536
        for _ in range(size // 65536):
            yield chunk

    async def main() -> tuple[int, str, int, int]:
        async with Client(http2=http2) as client:
            tracemalloc.start()
            received = 0
            async with client.stream("GET", f"{client_app_server.url}/big?mb=100") as response:
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
            _, download_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            uploaded = await client.post(f"{client_app_server.url}/count",
                                         content=upload_body())
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return received, uploaded.text, download_peak, upload_peak

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    received, uploaded, download_peak, upload_peak = run(main(), timeout=60)
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert received == size and uploaded == str(size)
    # A body held whole would be 100 MB; the stream buffers stay near their 1 MiB windows.
    assert download_peak < 8 * 1024 * 1024, download_peak
    assert upload_peak < 8 * 1024 * 1024, upload_peak
    assert rss_growth_kib < 64 * 1024, rss_growth_kib
