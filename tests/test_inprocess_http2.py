"""HTTP/2 in process: the real protocols fed an h2 client's bytes through a fake transport.

The connection opens as HTTP/1.1 and switches by prior knowledge, as on a real
port.  Being in process makes "nothing more was sent" exact: once the loop is
idle, what the server wrote is all it will write until the client acts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, PingFrame, RstStreamFrame, SettingsFrame

from h2_client import check_scope_answers, parse_frames, queue_scope_requests
from inprocess import InProcessH2Client, InProcessServer, serving

APP = "apps.h2_app:app"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture
def server() -> Iterator[InProcessServer]:
    with serving(APP) as server:
        yield server


def goaway_code(h2c: InProcessH2Client) -> int | None:
    """The error code of the server's GOAWAY, once it has closed the connection."""
    h2c.wait_closed()
    return None if h2c.goaway is None else int(h2c.goaway.error_code)


# -- the opening -------------------------------------------------------------------------


def test_prior_knowledge_request_and_body(server: InProcessServer) -> None:
    h2c = server.h2_connect()
    assert h2c.get("/hello").body == b"Hello, world!"
    echoed = h2c.get("/echo", method="POST", body=b"x" * 16000)
    assert echoed.status == 200
    assert echoed.body == b"x" * 16000
    assert not h2c.connection.closed
    assert server.tracebacks() == []


def send_scope_requests(h2c: InProcessH2Client, preface_pieces: int, pieces: int) -> list[int]:
    """h2_client.queue_scope_requests, delivered in reads of `pieces` bytes (the preface
    in reads of `preface_pieces`)."""
    streams = queue_scope_requests(h2c)
    data = h2c.conn.data_to_send()
    h2c.connection.feed(data[:len(PREFACE)], preface_pieces)
    h2c.connection.feed(data[len(PREFACE):], pieces)
    return streams


@pytest.mark.parametrize("pieces", [1, 5, 13])
def test_frames_split_anywhere_across_reads(server: InProcessServer, pieces: int) -> None:
    """SETTINGS and requests (one with a body) cut into reads of `pieces` bytes."""
    h2c = server.h2_connect(send_preface=False)
    check_scope_answers(h2c, send_scope_requests(h2c, 0, pieces))


def test_a_preface_split_across_reads_is_http2(server: InProcessServer) -> None:
    h2c = server.h2_connect(send_preface=False)
    check_scope_answers(h2c, send_scope_requests(h2c, 5, 0))


def test_a_first_frame_other_than_settings_is_protocol_error(server: InProcessServer) -> None:
    """RFC 9113 3.4: the preface is followed by SETTINGS."""
    connection = server.connect()
    connection.feed(PREFACE + PingFrame(0, opaque_data=b"12345678").serialize())
    frames = parse_frames(connection.read_until_closed())
    goaways = [frame for frame in frames if isinstance(frame, GoAwayFrame)]
    assert goaways and goaways[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert server.tracebacks() == []
    assert server.h2_connect().get("/hello").status == 200  # the server is fine


@pytest.mark.parametrize("opening", [
    pytest.param(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", id="wrong-magic"),
    pytest.param(b"PRI * HTTP/2.0\r\n\r\n\r\n", id="short-magic"),
    pytest.param(b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n", id="http-1.1-version"),
])
def test_a_broken_preface_is_refused_and_closed(server: InProcessServer, opening: bytes) -> None:
    """Not the preface, so not HTTP/2: a bad HTTP/1.1 request, refused, then the close."""
    connection = server.connect()
    connection.feed(opening + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = connection.read_until_closed()
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 505 ")), answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert b"\r\nconnection: close\r\n" in answer
    assert server.tracebacks() == []


@pytest.mark.parametrize("frame", [
    pytest.param(DataFrame(5, b"x").serialize(), id="data-on-an-idle-stream"),
    pytest.param(RstStreamFrame(9).serialize(), id="rst-stream-on-an-idle-stream"),
])
def test_frames_on_idle_streams_are_protocol_errors(server: InProcessServer,
                                                    frame: bytes) -> None:
    h2c = server.h2_connect()
    h2c.send_raw(frame)
    assert goaway_code(h2c) == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert server.tracebacks() == []


# -- flow control ------------------------------------------------------------------------


def test_response_respects_the_client_window(server: InProcessServer) -> None:
    h2c = server.h2_connect(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000},
                            auto_window=False)
    stream_id = h2c.request("/sized?n=5000")
    result = h2c.streams[stream_id]
    h2c.wait_for(lambda: len(result.body) >= 1000, what="the first window")
    h2c.connection.settle()
    assert not h2c.connection.unread()  # idle, and nothing beyond the window
    assert len(result.body) == 1000 and not result.ended
    h2c.conn.acknowledge_received_data(1000, stream_id)
    h2c.conn.increment_flow_control_window(4000, stream_id)
    h2c.flush()
    h2c.wait_for(lambda: result.ended, what="the rest after WINDOW_UPDATE")
    assert result.body == b"x" * 5000


def test_request_window_opens_only_as_the_app_reads(server: InProcessServer) -> None:
    """The app does not read: the client can send one window and no more (back-pressure)."""
    h2c = server.h2_connect()
    held = h2c.request("/hold", method="POST", end=False)
    for start in range(0, 65535, 16384):
        h2c.conn.send_data(held, b"a" * min(16384, 65535 - start))
    h2c.flush()
    h2c.pump()
    assert h2c.conn.local_flow_control_window(held) == 0
    window_updates = [e for e in h2c.events if isinstance(e, h2.events.WindowUpdated)
                      and e.stream_id == held]
    assert window_updates == []  # nothing opened while the app holds the body
    assert server.h2_connect().get("/release").body == b"released"
    h2c.wait_for(lambda: h2c.conn.local_flow_control_window(held) > 0,
                 what="WINDOW_UPDATE once the app read")
    h2c.conn.send_data(held, b"b" * 1000, end_stream=True)
    h2c.flush()
    assert h2c.response(held).body == b"66535"


@pytest.mark.parametrize("path", ["/echo", "/hello"])  # reads the body / never reads it
def test_request_bodies_give_the_connection_window_back(server: InProcessServer,
                                                         path: str) -> None:
    """Bodies whose last bytes the app read (or never read) still hold no connection window:
    100 bodies of 1,000 bytes (more than the 65,535-byte window) on one connection.  The
    last read of a body asked for nothing more, so its bytes were never acknowledged and
    the 66th request stalled until REQUEST_TIMEOUT (504)."""
    h2c = server.h2_connect()
    for _ in range(100):
        answer = h2c.get(path, method="POST", body=b"x" * 1000)
        assert answer.status == 200
    assert h2c.conn.outbound_flow_control_window > 65535 - 1000
    assert server.tracebacks() == []


def test_slow_reader_holds_back_a_large_response(server: InProcessServer) -> None:
    h2c = server.h2_connect(auto_window=False)
    stream_id = h2c.request("/big?n=300000")
    result = h2c.streams[stream_id]
    h2c.wait_for(lambda: len(result.body) >= 65535, what="one window of data")
    h2c.connection.settle()
    assert not h2c.connection.unread()
    assert len(result.body) == 65535
    h2c.auto_window = True
    h2c.conn.acknowledge_received_data(65535, stream_id)
    h2c.flush()
    h2c.response(stream_id)
    assert len(result.body) == 300000


def test_window_overflow_is_flow_control_error(server: InProcessServer) -> None:
    h2c = server.h2_connect()
    h2c.wait_for_settings_ack()
    h2c.conn.increment_flow_control_window(2**31 - 1 - 65535)  # the most the window may be
    h2c.flush()
    h2c.send_raw(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x01")  # one byte more
    assert goaway_code(h2c) == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR


# -- limits ------------------------------------------------------------------------------


def test_body_over_max_body_size_is_413() -> None:
    with serving(APP, MAX_BODY_SIZE=1000) as server:
        h2c = server.h2_connect()
        declared = h2c.get("/echo", method="POST", body=b"x" * 2000,
                           headers=[(b"content-length", b"2000")])
        undeclared = h2c.get("/echo", method="POST", body=b"x" * 2000)
        within = h2c.get("/echo", method="POST", body=b"x" * 1000)
        assert (declared.status, undeclared.status, within.status) == (413, 413, 200)
        assert within.body == b"x" * 1000


def test_too_many_header_fields_is_431_on_that_stream() -> None:
    with serving(APP, MAX_HEADER_COUNT=10) as server:
        h2c = server.h2_connect()
        assert h2c.get("/hello", headers=[(b"x-h%d" % i, b"v") for i in range(12)]).status == 431
        assert h2c.get("/hello", headers=[(b"x-h%d" % i, b"v") for i in range(5)]).status == 200


def test_the_header_list_limit_is_enforced_from_the_first_request() -> None:
    with serving(APP, MAX_HEADER_SIZE=2000) as server:
        h2c = server.h2_connect()
        stream_id = h2c.request("/hello", headers=[(b"x-a", b"a" * 2500)])
        assert goaway_code(h2c) not in (None, h2.errors.ErrorCodes.NO_ERROR)
        assert not h2c.streams[stream_id].headers  # never answered
        fresh = server.h2_connect()
        assert fresh.get("/hello", headers=[(b"x-a", b"a" * 1500)]).status == 200
        assert server.tracebacks() == []


def test_a_stream_over_the_concurrency_limit_is_refused() -> None:
    with serving(APP, H2_MAX_CONCURRENT_STREAMS=2) as server:
        h2c = server.h2_connect()
        h2c.wait_for(lambda: h2c.conn.remote_settings.max_concurrent_streams == 2,
                     what="SETTINGS")
        first = h2c.request("/hold", method="POST", end=False)
        second = h2c.request("/hold", method="POST", end=False)
        # Bypass the client's own check: a third stream is over the advertised limit.
        h2c.conn.remote_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100})
        third = h2c.request("/hello")
        h2c.pump()
        refused = h2c.streams[third]
        assert not refused.headers  # the app never answered it
        assert (refused.reset_code == h2.errors.ErrorCodes.REFUSED_STREAM
                or h2c.goaway is not None), h2c.events
        assert not h2c.streams[first].headers and not h2c.streams[second].headers


# -- floods and timeouts -------------------------------------------------------------------


def closed_for_flood(server: InProcessServer, h2c: InProcessH2Client, what: str) -> None:
    """The server closed the connection and said why in one log line, without a traceback."""
    h2c.wait_closed()
    lines = [record.getMessage() for record in server.log_records]
    assert any(line.startswith("HTTP/2 ") and what in line for line in lines), lines
    assert server.tracebacks() == []


@pytest.mark.parametrize(("frame", "what"), [
    pytest.param(SettingsFrame(0), "SETTINGS", id="settings"),
    pytest.param(PingFrame(0, opaque_data=b"12345678"), "PING", id="ping"),
])
def test_settings_and_ping_floods_close_the_connection(server: InProcessServer, frame: Any,
                                                       what: str) -> None:
    h2c = server.h2_connect()
    h2c.send_raw(frame.serialize() * 500)
    closed_for_flood(server, h2c, what)


def test_rapid_reset_closes_the_connection(server: InProcessServer) -> None:
    h2c = server.h2_connect()
    for _ in range(300):
        stream_id = h2c.conn.get_next_available_stream_id()
        h2c.conn.send_headers(stream_id, [(b":method", b"GET"), (b":path", b"/sleep?s=5"),
                                          (b":scheme", b"http"), (b":authority", b"x")])
        h2c.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    h2c.flush()
    closed_for_flood(server, h2c, "rapid reset")
    assert h2c.goaway is None or h2c.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert server.h2_connect().get("/hello").status == 200


def test_request_timeout_answers_504_on_that_stream_only() -> None:
    with serving(APP, REQUEST_TIMEOUT=0.05) as server:
        h2c = server.h2_connect()
        slow = h2c.request("/sleep?s=30")
        assert h2c.get("/hello").body == b"Hello, world!"
        assert h2c.response(slow).status == 504
        assert h2c.get("/hello").status == 200


def test_an_idle_connection_is_closed() -> None:
    with serving(APP, KEEP_ALIVE_TIMEOUT=0.05) as server:
        h2c = server.h2_connect()
        assert h2c.get("/hello").status == 200
        h2c.wait_closed()
        assert h2c.goaway is not None
        assert h2c.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
