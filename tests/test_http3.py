"""HTTP/3 over QUIC end to end: a real server with QUIC_BIND, aioquic's client.

The HTTP/2 conformance cases that apply to HTTP/3 (scope, pseudo-headers,
streamed bodies, trailers, disconnects, limits, connection-specific fields),
Alt-Svc on the TCP side, Retry, a 20 MiB download, bad input, and a graceful
shutdown with open streams.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import ssl
from pathlib import Path

import httpx
import pytest

from conftest import (
    ServerProcess,
    assert_one_line_error,
    run_failing_server,
    wait_until,
    write_tls_files,
)

pytest.importorskip("aioquic")
from aioquic.h3.connection import FrameType, encode_frame
from h3_client import h3_connect

QUIC_LINE = re.compile(r"HTTP/3 \(QUIC\) on udp://([\d.]+):(\d+)")
ADMIN_LINE = re.compile(r"Admin plane on http://([\d.]+):(\d+)")


class H3Server:
    def __init__(self, folder: Path, *args: str, **env: str) -> None:
        self.tls = write_tls_files(folder)
        self.process = ServerProcess(
            ["apps.h3_app:app", "--host", "127.0.0.1", "--port", "0", *args],
            env={"QACTUAR_QUIC_BIND": "127.0.0.1:0",
                 "QACTUAR_SSL_CERT_PATH": str(self.tls["cert"]),
                 "QACTUAR_SSL_KEY_PATH": str(self.tls["key"]), **env})
        self.quic_port = int(self.process.wait_for_log(QUIC_LINE).group(2))

    def connect(self, timeout: float = 10):
        return h3_connect("127.0.0.1", self.quic_port, ca=str(self.tls["ca"]), timeout=timeout)

    def stop(self) -> int:
        return self.process.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    h3 = H3Server(tmp_path_factory.mktemp("h3"), "--max-body-size", "100000",
                  "--max-url-size", "200", "--max-header-count", "20",
                  "--max-header-size", "4000", "--admin", "--admin-port", "0")
    yield h3
    assert h3.stop() == 0


def run(coro):
    return asyncio.run(coro)


def metrics(server: H3Server) -> dict[str, int]:
    host, port = server.process.wait_for_log(ADMIN_LINE).groups()
    text = httpx.get(f"http://{host}:{port}/metrics", timeout=5).text
    return {event: int(count) for event, count in
            re.findall(r'qactuar_datagram_events_total\{event="(\w+)"\} (\d+)', text)}


def test_scope_is_built_by_the_one_entry_with_http_version_3(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            answer = await client.request("GET", "/scope?a=1", [(b"x-one", b"1"),
                                                                (b"cookie", b"a=1"),
                                                                (b"cookie", b"b=2")])
            assert answer.status == 200
            scope = json.loads(answer.body)
            assert scope["http_version"] == "3"
            assert scope["scheme"] == "https"
            assert scope["path"] == "/scope" and scope["query_string"] == "a=1"
            headers = [tuple(pair) for pair in scope["headers"]]
            # :authority becomes host, no pseudo-header reaches the app, cookie crumbs join
            assert headers[0] == ("host", f"localhost:{server.quic_port}")
            assert not any(name.startswith(":") for name, _ in headers)
            assert ("cookie", "a=1; b=2") in headers
            assert "http.response.trailers" in scope["extensions"]
            assert answer.header(b"server").startswith(b"qactuar/")
            assert answer.header(b"date")
    run(go())


def test_streamed_bodies_both_ways_and_request_trailers(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            parts = [os.urandom(5000) for _ in range(8)]
            answer = await client.request("POST", "/echo", body=parts,
                                          trailers=[(b"x-sum", b"1")])
            assert answer.status == 200
            assert answer.body == b"".join(parts)
            big = await client.request("GET", "/big?n=300000")
            assert big.body == b"b" * 300000
            assert big.header(b"content-length") == b"300000"
    run(go())


def test_response_trailers(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            answer = await client.request("GET", "/trailers")
            assert answer.body == b"body"
            assert answer.trailers == [(b"x-checksum", b"done")]
    run(go())


def test_connection_specific_response_fields_are_not_sent(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            answer = await client.request("GET", "/conn-headers")
            names = {name for name, _ in answer.headers}
            assert b"x-kept" in names
            assert not names & {b"connection", b"keep-alive", b"transfer-encoding"}
    run(go())


def test_limits_answer_413_414_431_on_that_stream_only(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            too_big = await client.request("POST", "/echo", body=[b"x" * 60000] * 2)
            assert too_big.status == 413
            assert (await client.request("GET", "/" + "a" * 300)).status == 414
            many = [(f"x-h{i}".encode(), b"v") for i in range(30)]
            assert (await client.request("GET", "/", many)).status == 431
            huge = [(b"x-huge", b"v" * 5000)]
            assert (await client.request("GET", "/", huge)).status == 431
            # the connection still serves
            assert (await client.request("GET", "/trailers")).status == 200
    run(go())


def test_malformed_request_resets_only_its_stream(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            stream = client.open_stream("GET", "/", fields=[
                (b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.example"),
                (b":path", b"/"), (b"host", b"b.example")])
            answer = await client.response(stream)
            assert answer.reset == 0x10E  # H3_MESSAGE_ERROR
            assert (await client.request("GET", "/trailers")).status == 200
    run(go())


def test_frames_in_the_wrong_order_close_that_connection_only(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            quic = client.protocol._quic
            stream = quic.get_next_available_stream_id()
            client.protocol.queues[stream] = asyncio.Queue()
            # DATA before any HEADERS on a request stream (RFC 9114 4.1: H3_FRAME_UNEXPECTED)
            quic.send_stream_data(stream, encode_frame(FrameType.DATA, b"early"),
                                  end_stream=True)
            client.protocol.transmit()
            async with asyncio.timeout(10):
                while client.protocol.terminated is None:
                    await asyncio.sleep(0.02)
            assert client.protocol.terminated.error_code == 0x105
        # the next connection is served as usual
        async with server.connect() as client:
            assert (await client.request("GET", "/trailers")).status == 200
    run(go())
    server.process.wait_for_log(r"closed: error 0x105 .*logged once")
    assert "Traceback" not in server.process.output


def test_client_reset_is_http_disconnect_for_the_app(server: H3Server,
                                                     tmp_path: Path) -> None:
    seen = tmp_path / "seen"

    async def go() -> None:
        async with server.connect() as client:
            stream = client.open_stream("POST", f"/wait-disconnect?file={seen}", end=False)
            client.send_data(stream, b"part")
            await asyncio.sleep(0)
            client.reset(stream)
            await asyncio.to_thread(wait_until, seen.exists, 10, "the app's disconnect")
            assert (await client.request("GET", "/trailers")).status == 200
    run(go())
    assert seen.read_text() == "http.disconnect"


def test_twenty_mebibyte_download_arrives_whole(server: H3Server) -> None:
    size = 20 * 1024 * 1024

    async def go() -> None:
        async with server.connect(timeout=60) as client:
            answer = await client.request("GET", f"/download?n={size}", timeout=60)
            assert answer.status == 200
            assert len(answer.body) == size
            assert hashlib.sha256(answer.body).hexdigest().encode() == answer.header(b"x-sha256")
    run(go())


def test_alt_svc_on_tls_http1_and_http2_responses(server: H3Server) -> None:
    url = server.process.url
    context = ssl.create_default_context(cafile=str(server.tls["ca"]))
    expected = f'h3=":{server.quic_port}"; ma=86400'
    with httpx.Client(verify=context) as h1:
        first = h1.get(f"{url}/trailers")
        assert first.http_version == "HTTP/1.1"
        assert first.headers["alt-svc"] == expected
        assert h1.get(f"{url}/conn-headers").headers["alt-svc"] == expected
    with httpx.Client(verify=context, http2=True, http1=False) as h2:
        answer = h2.get(f"{url}/trailers")
        assert answer.http_version == "HTTP/2"
        assert answer.headers["alt-svc"] == expected


def test_retry_is_on_by_default(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            assert client.retried
    run(go())
    assert metrics(server)["quic_retries"] >= 1


def test_http3_responses_are_counted_as_http3_in_metrics(server: H3Server) -> None:
    async def go() -> None:
        async with server.connect() as client:
            assert (await client.request("GET", "/trailers")).status == 200
    run(go())
    host, port = server.process.wait_for_log(ADMIN_LINE).groups()
    text = httpx.get(f"http://{host}:{port}/metrics", timeout=5).text
    count = re.search(r'qactuar_http_requests_total\{protocol="http/3",status_class="2xx"\} '
                      r"(\d+)", text)
    assert count is not None and int(count.group(1)) >= 1


def test_garbage_and_forged_initials_are_counted_logged_once(server: H3Server) -> None:
    before = metrics(server)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(20):
            sock.sendto(b"\x00garbage", ("127.0.0.1", server.quic_port))
        # a long-header Initial (version 1) of full size with a token we never issued
        for _ in range(5):
            sock.sendto(_initial(os.urandom(16), 1232), ("127.0.0.1", server.quic_port))
        # an Initial in a datagram under the 1200 bytes RFC 9000 14.1 asks for
        sock.sendto(_initial(b"", 250), ("127.0.0.1", server.quic_port))
    finally:
        sock.close()

    def counted() -> bool:
        now = metrics(server)
        return (now["quic_garbage"] >= before["quic_garbage"] + 20
                and now["quic_invalid_token"] >= before["quic_invalid_token"] + 5
                and now["quic_bad_initial"] >= before["quic_bad_initial"] + 1)

    wait_until(counted, 10, "the datagram counters", lambda: metrics(server))
    output = server.process.output
    assert output.count("that is not QUIC (logged once") == 1
    assert output.count("invalid token") == 1
    assert "Traceback" not in output

    async def go() -> None:
        async with server.connect() as client:
            assert (await client.request("GET", "/trailers")).status == 200
    run(go())


def _initial(token: bytes, payload_size: int) -> bytes:
    """A long-header QUIC v1 Initial: random connection IDs, `token`, random payload."""
    return (bytes([0xC0]) + (1).to_bytes(4, "big") + bytes([8]) + os.urandom(8)
            + bytes([8]) + os.urandom(8) + bytes([len(token)]) + token
            + (0x4000 | payload_size).to_bytes(2, "big") + os.urandom(payload_size))


def test_client_that_vanishes_mid_stream_is_a_disconnect(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    h3 = H3Server(tmp_path, "--keep-alive-timeout", "1", "--request-timeout", "0",
                  "--header-timeout", "1")
    try:
        async def go() -> None:
            async with h3.connect() as client:
                stream = client.open_stream("POST", f"/wait-disconnect?file={seen}",
                                            end=False)
                client.send_data(stream, b"part")
                await asyncio.sleep(0.2)
                # vanish: no CONNECTION_CLOSE, the socket just goes quiet
                client.protocol._transport.close()
        run(go())
        wait_until(seen.exists, 10, "the app's disconnect after the idle timeout")
        assert seen.read_text() == "http.disconnect"
        assert "Traceback" not in h3.process.output
    finally:
        assert h3.stop() == 0


def test_retry_can_be_turned_off(tmp_path: Path) -> None:
    h3 = H3Server(tmp_path, QACTUAR_QUIC_RETRY="false")
    try:
        async def go() -> None:
            async with h3.connect() as client:
                assert not client.retried
                assert (await client.request("GET", "/trailers")).status == 200
        run(go())
    finally:
        assert h3.stop() == 0


def test_shutdown_sends_goaway_and_lets_open_streams_finish(tmp_path: Path) -> None:
    h3 = H3Server(tmp_path)
    size = 4 * 1024 * 1024
    try:
        async def go() -> None:
            async with h3.connect() as client:
                stream = client.open_stream("GET", f"/download?n={size}")
                events = client.stream_events(stream)
                first = await anext(events)  # the head: the response is under way
                assert first.headers[0] == (b":status", b"200")
                h3.process.send_signal(signal.SIGTERM)
                body = bytearray()
                async with asyncio.timeout(30):
                    async for event in events:
                        body += getattr(event, "data", b"")
                        if getattr(event, "stream_ended", False):
                            break
                assert hashlib.sha256(body).hexdigest().encode() == dict(first.headers)[
                    b"x-sha256"]
                assert client.protocol.goaway == stream + 4
        run(go())
    finally:
        assert h3.stop() == 0
    output = h3.process.output
    assert "Shutting down" in output and "Traceback" not in output


@pytest.mark.parametrize(("env", "needle"), [
    ({"QACTUAR_QUIC_BIND": "127.0.0.1:0"}, "QUIC_BIND needs SSL_CERT_PATH"),
    ({"QACTUAR_QUIC_BIND": "localhost"}, "QUIC_BIND"),
    ({"QACTUAR_UDP_BINDS": "127.0.0.1:0", "QACTUAR_ASYNCRONOUS_MODEL": "postfork"},
     "not postfork"),
])
def test_bad_datagram_settings_are_one_line_exit_2(env: dict[str, str], needle: str) -> None:
    line = assert_one_line_error(run_failing_server("apps.h3_app:app", **env))
    assert needle in line
