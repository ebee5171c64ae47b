"""Bad peers: each fails only its own request with the right ClientError and 7xx code, never
hangs, and leaves the Client working (the next request on it succeeds).

The peers are small asyncio servers in the test that write exact bytes (HTTP/1.1) or drive
`h2`'s server side (HTTP/2); their first connection misbehaves, later ones answer "ok".
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from client_helpers import OK_RESPONSE, RawServer, abort, answer_ok_forever, read_head, run
from qactuar.client import (
    CODES,
    Client,
    ClientClosed,
    ClientError,
    ConnectError,
    ConnectionClosed,
    ConnectTimeout,
    HTTP2ConnectionError,
    InvalidURL,
    Limits,
    NameResolutionError,
    NoResponse,
    PoolTimeout,
    ProtocolError,
    ProtocolSwitchError,
    ReadTimeout,
    ResponseHeaderError,
    ShutdownError,
    StreamReset,
    Timeout,
    TotalTimeout,
    UnexpectedError,
    WriteTimeout,
)

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def misbehaving_once(bad: Behaviour) -> Behaviour:
    """A peer whose first connection runs `bad`; every later one answers "ok"."""
    seen = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen += 1
        if seen == 1:
            await bad(reader, writer)
        else:
            await answer_ok_forever(reader, writer)

    return handler


async def respond_with(raw: bytes, then_close: bool = True) -> Behaviour:
    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(raw)
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await reader.read()

    return bad


def fails_then_recovers(bad: Behaviour, error_class: type[ClientError], code: int,
                        timeout: Timeout | float = 5, **client_options) -> ClientError:
    """`bad`'s request raises `error_class` with `code`; the next one on the Client is fine."""

    async def main() -> tuple[ClientError, str]:
        async with RawServer(misbehaving_once(bad)) as server, \
                Client(timeout=timeout, **client_options) as client:
            with pytest.raises(error_class) as caught:
                await client.get(f"{server.url}/first")
            after = await client.get(f"{server.url}/second")
            return caught.value, after.text

    error, after = run(main())
    assert error.code == code, error
    assert str(error).startswith(f"{code} {CODES[code][0]}: ")
    assert "\n" not in str(error)
    assert after == "ok"
    return error


async def bad_status_line(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 abc Nope\r\nContent-Length: 0\r\n\r\n")


async def bad_header(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nBad Header Name: x\r\nContent-Length: 0\r\n\r\n")


async def huge_head(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 100_000 + b"\r\n\r\n")
    await reader.read()


async def bad_chunking(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
    await reader.read()


async def past_content_length(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokAND MORE BYTES")
    await reader.read()


async def closes_mid_body(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
    await writer.drain()


async def resets_mid_body(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
    await writer.drain()
    abort(writer)


async def closes_without_answer(reader, writer) -> None:
    await read_head(reader)


async def closes_mid_status_line(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 2")  # no parser callback yet: still an answer begun
    await writer.drain()


async def stalls(reader, writer) -> None:
    await read_head(reader)
    await reader.read()  # never answers


async def stalls_mid_body(reader, writer) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
    await reader.read()


def test_bad_status_line_is_715() -> None:
    fails_then_recovers(bad_status_line, ResponseHeaderError, 715)


def test_malformed_header_is_715() -> None:
    fails_then_recovers(bad_header, ResponseHeaderError, 715)


def test_header_too_large_is_715() -> None:
    error = fails_then_recovers(huge_head, ResponseHeaderError, 715,
                                limits=Limits(max_header_size=16384))
    assert "16384" in str(error)


def test_bad_chunking_is_707() -> None:
    fails_then_recovers(bad_chunking, ProtocolError, 707)


def test_body_past_content_length_is_707() -> None:
    error = fails_then_recovers(past_content_length, ProtocolError, 707)
    assert "past its end" in str(error)


def test_close_mid_body_is_700() -> None:
    fails_then_recovers(closes_mid_body, ConnectionClosed, 700)


def test_reset_mid_body_is_700() -> None:
    error = fails_then_recovers(resets_mid_body, ConnectionClosed, 700)
    assert "reset" in str(error)


def test_close_without_answer_is_708() -> None:
    fails_then_recovers(closes_without_answer, NoResponse, 708)


def test_close_mid_status_line_is_700_in_the_head() -> None:
    error = fails_then_recovers(closes_mid_status_line, ConnectionClosed, 700)
    assert "response head" in str(error)


def test_stalled_server_is_a_702_read_timeout() -> None:
    fails_then_recovers(stalls, ReadTimeout, 702, timeout=Timeout(read=0.3))
    fails_then_recovers(stalls_mid_body, ReadTimeout, 702, timeout=Timeout(read=0.3))


def test_total_timeout_is_722() -> None:
    fails_then_recovers(stalls, TotalTimeout, 722, timeout=Timeout(total=0.3))


def test_unresolvable_host_is_704() -> None:
    async def main() -> ClientError:
        async with Client() as client:
            with pytest.raises(NameResolutionError) as caught:
                await client.get("http://no-such-host.invalid/")
            return caught.value

    assert run(main()).code == 704


def test_refused_connection_is_714() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused

        async def main() -> ClientError:
            async with Client() as client:
                with pytest.raises(ConnectError) as caught:
                    await client.get(f"http://127.0.0.1:{port}/")
                return caught.value

        assert run(main()).code == 714


def test_pool_timeout_is_702() -> None:
    async def main() -> tuple[ClientError, str]:
        async with RawServer(misbehaving_once(stalls)) as server:
            limits = Limits(max_connections_per_origin=1)
            async with Client(limits=limits, timeout=Timeout(pool=0.2, read=1)) as client:
                stuck = asyncio.ensure_future(client.get(f"{server.url}/stuck"))
                await asyncio.sleep(0.05)
                with pytest.raises(PoolTimeout) as caught:
                    await client.get(f"{server.url}/waiting")
                with pytest.raises(ReadTimeout):
                    await stuck
                return caught.value, (await client.get(f"{server.url}/after")).text

    error, after = run(main())
    assert error.code == 702 and after == "ok"


def test_write_timeout_is_702() -> None:
    async def never_reads(reader, writer) -> None:
        await asyncio.sleep(10)

    async def body():
        for _ in range(4096):
            yield b"x" * 65536

    async def main() -> ClientError:
        async with RawServer(never_reads) as server, \
                Client(timeout=Timeout(write=0.3)) as client:
            with pytest.raises(WriteTimeout) as caught:
                await client.post(f"{server.url}/upload", content=body())
            return caught.value

    assert run(main()).code == 702


def test_closed_client_is_705_and_in_flight_requests_712() -> None:
    async def main() -> tuple[ClientError, ClientError]:
        async with RawServer(stalls) as server:
            client = Client(limits=Limits(max_connections_per_origin=1))
            pending = asyncio.ensure_future(client.get(f"{server.url}/slow"))
            queued = asyncio.ensure_future(client.get(f"{server.url}/queued"))
            await asyncio.sleep(0.1)
            await client.aclose()
            with pytest.raises(ShutdownError) as in_flight:
                await pending
            with pytest.raises(ShutdownError):
                await queued  # it was waiting for the pool
            with pytest.raises(ClientClosed) as closed:
                await client.get(f"{server.url}/after")
            return in_flight.value, closed.value

    in_flight, closed = run(main())
    assert in_flight.code == 712 and closed.code == 705


def test_h2_prior_knowledge_to_an_http1_server_is_716() -> None:
    async def http1_only(reader, writer) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    async def main() -> ClientError:
        async with RawServer(http1_only) as server, Client(http2="prior-knowledge") as client:
            with pytest.raises(ProtocolSwitchError) as caught:
                await client.get(f"{server.url}/")
            return caught.value

    assert run(main()).code == 716


# -- HTTP/2 peers --------------------------------------------------------------------------
def h2_peer(on_request: Callable[[h2.connection.H2Connection, int, int], None]) -> Behaviour:
    """An HTTP/2 server (h2's state machine); on_request(conn, stream, n) answers request n."""
    count = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    count += 1
                    on_request(conn, event.stream_id, count)
            writer.write(conn.data_to_send())
            await writer.drain()

    return handler


def answer_ok(conn: h2.connection.H2Connection, stream_id: int) -> None:
    conn.send_headers(stream_id, [(":status", "200"), ("content-length", "2")])
    conn.send_data(stream_id, b"ok", end_stream=True)


def h2_fails_then_recovers(first: Callable, error_class: type[ClientError], code: int) -> None:
    def on_request(conn, stream_id, count) -> None:
        if count == 1:
            first(conn, stream_id)
        else:
            answer_ok(conn, stream_id)

    async def main() -> tuple[ClientError, str, str]:
        async with RawServer(h2_peer(on_request)) as server, \
                Client(http2="prior-knowledge", timeout=5) as client:
            with pytest.raises(error_class) as caught:
                await client.get(f"{server.url}/first")
            after = await client.get(f"{server.url}/second")
            return caught.value, after.text, after.http_version

    error, text, version = run(main())
    assert error.code == code, error
    assert (text, version) == ("ok", "HTTP/2")


def test_h2_stream_reset_is_721() -> None:
    h2_fails_then_recovers(lambda conn, stream_id: conn.reset_stream(stream_id, 2),
                           StreamReset, 721)


def test_h2_goaway_is_720() -> None:
    # GOAWAY before processing: retried on new connections, then given up with 720.
    def on_request(conn, stream_id, count) -> None:
        if count <= 3:
            conn.close_connection(error_code=2, last_stream_id=0)
        else:
            answer_ok(conn, stream_id)

    async def main() -> tuple[ClientError, str]:
        async with RawServer(h2_peer(on_request)) as server, \
                Client(http2="prior-knowledge", timeout=5) as client:
            with pytest.raises(HTTP2ConnectionError) as caught:
                await client.get(f"{server.url}/first")
            return caught.value, (await client.get(f"{server.url}/second")).text

    error, text = run(main())
    assert error.code == 720 and "INTERNAL_ERROR" in str(error) and text == "ok"


def test_h2_goaway_once_is_retried_transparently() -> None:
    def on_request(conn, stream_id, count) -> None:
        if count == 1:
            conn.close_connection(error_code=0, last_stream_id=0)
        else:
            answer_ok(conn, stream_id)

    async def main() -> str:
        async with RawServer(h2_peer(on_request)) as server, \
                Client(http2="prior-knowledge", timeout=5) as client:
            return (await client.get(f"{server.url}/first")).text

    assert run(main()) == "ok"


def test_h2_response_without_status_is_715() -> None:
    h2_fails_then_recovers(_send_raw_headers, ResponseHeaderError, 715)


def _send_raw_headers(conn: h2.connection.H2Connection, stream_id: int) -> None:
    """HEADERS without :status (h2 refuses to build them, so the frame is written by hand)."""
    block = conn.encoder.encode([(b"content-length", b"0")])
    frame = len(block).to_bytes(3, "big") + b"\x01\x05" + stream_id.to_bytes(4, "big") + block
    conn._data_to_send += frame


def test_keep_alive_closed_by_the_server_is_retried_once() -> None:
    """The server closes an idle kept-alive connection as we send: the request goes again."""

    async def one_answer_per_connection(reader, writer) -> None:
        await read_head(reader)
        writer.write(OK_RESPONSE)  # says keep-alive, then closes after the first answer
        await writer.drain()

    async def main() -> list[str]:
        async with RawServer(one_answer_per_connection) as server, Client() as client:
            texts = []
            for _ in range(3):
                texts.append((await client.get(f"{server.url}/")).text)
            return texts

    assert run(main()) == ["ok", "ok", "ok"]


def test_connect_timeout_covers_a_stalled_tls_handshake() -> None:
    async def silent(reader, writer) -> None:
        await reader.read()  # takes the ClientHello, never answers it

    async def main() -> ClientError:
        async with RawServer(silent) as server, \
                Client(timeout=Timeout(connect=0.3), verify=False) as client:
            with pytest.raises(ConnectTimeout) as caught:
                await client.get(f"https://127.0.0.1:{server.port}/")
            return caught.value

    error = run(main())
    assert error.code == 702 and "0.3" in str(error)


def test_retries_after_a_connection_failure_for_idempotent_methods_only() -> None:
    async def main() -> tuple[str, ClientError]:
        async with RawServer(misbehaving_once(closes_without_answer)) as server, \
                Client(retries=1) as client:
            retried = await client.get(f"{server.url}/")
        async with RawServer(misbehaving_once(closes_without_answer)) as server, \
                Client(retries=1) as client:
            with pytest.raises(NoResponse) as caught:
                await client.post(f"{server.url}/", content=b"not idempotent")
        return retried.text, caught.value

    text, error = run(main())
    assert text == "ok" and error.code == 708


def test_retries_back_off_doubling_between_attempts() -> None:
    arrivals: list[float] = []

    async def fails_twice(reader, writer) -> None:
        arrivals.append(asyncio.get_running_loop().time())
        if len(arrivals) <= 2:
            await closes_without_answer(reader, writer)
        else:
            await answer_ok_forever(reader, writer)

    async def main() -> str:
        async with RawServer(fails_twice) as server, Client(retries=2) as client:
            return (await client.get(f"{server.url}/")).text

    assert run(main()) == "ok"
    first_wait, second_wait = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    # BACKOFF_FACTOR (0.1 s), then twice that; a little slack for the loop's clock.
    assert first_wait >= 0.09 and second_wait >= 0.19, (first_wait, second_wait)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until the close",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until the close",
    # No reason phrase (no on_status callback), then no header field either.
    b"HTTP/1.1 200\r\nContent-Length: 20\r\n\r\nbody until the close",
    b"HTTP/1.0 200\r\n\r\nbody until the close",
    # Kept alive, yet HTTP/1.0: the version is not inferred from the keep-alive.
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 20\r\n\r\n"
    b"body until the close",
    b"HTTP/1.0 200 OK\r\nProxy-Connection: keep-alive\r\nContent-Length: 20\r\n\r\n"
    b"body until the close",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n"
    b"body until the close",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n10\r\n until the close"
    b"\r\n0\r\nX-Trailer: t\r\n\r\n",
    # A trailer field does not change how the body is decoded.
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\nbody until the close\r\n"
    b"0\r\nContent-Encoding: gzip\r\n\r\n",
])
def test_unusual_but_valid_answers(answer: bytes) -> None:
    async def peer(reader, writer) -> None:
        await read_head(reader)
        writer.write(answer)
        await writer.drain()

    async def main() -> tuple[str, str, str]:
        async with RawServer(peer) as server, Client() as client:
            first = await client.get(f"{server.url}/")
            second = await client.get(f"{server.url}/")  # on a new connection if closed
            return first.text, second.text, first.http_version

    first, second, version = run(main())
    assert first == second == "body until the close"
    assert version == ("HTTP/1.0" if answer.startswith(b"HTTP/1.0") else "HTTP/1.1")


def test_701_for_a_bad_url_and_for_a_body_iterator_that_raises() -> None:
    async def failing_body():
        yield b"first chunk"
        raise ValueError("the caller's generator broke")

    async def main() -> tuple[ClientError, ClientError, str]:
        async with RawServer(answer_ok_forever) as server, Client() as client:
            with pytest.raises(InvalidURL) as bad_url:
                await client.get("ftp://example.test/file")
            with pytest.raises(UnexpectedError) as broken_body:
                await client.post(f"{server.url}/", content=failing_body())
            after = await client.get(f"{server.url}/")
            return bad_url.value, broken_body.value, after.text

    bad_url, broken_body, after = run(main())
    assert bad_url.code == 701 and "scheme" in str(bad_url)
    assert broken_body.code == 701 and "generator broke" in str(broken_body)
    assert isinstance(broken_body.__cause__, ValueError)
    assert after == "ok"


def test_h2_frame_over_our_size_limit_is_707() -> None:
    def oversized(conn: h2.connection.H2Connection, stream_id: int) -> None:
        frame = (20000).to_bytes(3, "big") + b"\x00\x01" + stream_id.to_bytes(4, "big")
        conn._data_to_send += frame + b"x" * 20000  # past the 16384 we allow

    h2_fails_then_recovers(oversized, ProtocolError, 707)


def test_h2_read_timeout_is_per_stream() -> None:
    """A stream the server never answers times out alone; the others on its connection
    are answered and the connection stays in the pool."""

    def on_request(conn, stream_id, count) -> None:
        if count != 1:  # the first request is never answered
            answer_ok(conn, stream_id)

    async def main() -> tuple[ClientError, list[str], int]:
        async with RawServer(h2_peer(on_request)) as server, \
                Client(http2="prior-knowledge", timeout=Timeout(read=0.3)) as client:
            stalled = asyncio.ensure_future(client.get(f"{server.url}/never"))
            await asyncio.sleep(0.05)
            texts = []
            for _ in range(8):  # keeps the connection busy past the stalled stream's limit
                texts.append((await client.get(f"{server.url}/fine")).text)
                await asyncio.sleep(0.05)
            with pytest.raises(ReadTimeout) as caught:
                await stalled
            pool = next(iter(client._pools.values()))
            return caught.value, texts, len(pool.connections)

    error, texts, connections = run(main())
    assert error.code == 702 and "stream 1" in str(error)
    assert texts == ["ok"] * 8 and connections == 1


def test_h2_body_without_flow_control_window_is_a_702_write_timeout() -> None:
    async def no_window(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived) and \
                        dict(event.headers).get(b":method") == b"GET":
                    answer_ok(conn, event.stream_id)
            writer.write(conn.data_to_send())
            await writer.drain()

    async def main() -> tuple[ClientError, str]:
        async with RawServer(no_window) as server, \
                Client(http2="prior-knowledge", timeout=Timeout(write=0.3)) as client:
            with pytest.raises(WriteTimeout) as caught:
                await client.post(f"{server.url}/upload", content=b"never sent")
            return caught.value, (await client.get(f"{server.url}/after")).text

    error, after = run(main())
    assert error.code == 702 and "flow-control window" in str(error)
    assert after == "ok"
