"""HTTP/2 over h2c (prior knowledge) and TLS (ALPN): exact frames with the `h2` client.

Covers: the shared ASGI cycle on streams, pseudo-headers in the scope,
connection headers dropped, flow control both ways with back-pressure to the
app, many concurrent streams, RST_STREAM from the client, an app error
resetting one stream, GOAWAY on shutdown, the flood defences and the
conformance areas of h2spec that the `h2` client can express.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import h2.connection
import h2.errors
import h2.events
import h2.settings
import h2.stream
import httpx
import pytest
import trustme
from hpack import Decoder, Encoder, NeverIndexedHeaderTuple
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from apps.h2_app import field_value
from conftest import ServerProcess, recv_until_closed, wait_until
from h2_client import (
    H2Client,
    StreamResult,
    check_scope_answers,
    parse_frames,
    queue_scope_requests,
)

APP = "apps.h2_app:app"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def client(server: ServerProcess, **kwargs) -> H2Client:
    return H2Client(server.host, server.port, **kwargs)


@pytest.fixture
def h2_server(start_server) -> ServerProcess:
    return start_server(APP)


# -- the ASGI cycle on a stream ----------------------------------------------------------


def test_prior_knowledge_request_maps_pseudo_headers_into_the_scope(h2_server) -> None:
    with client(h2_server) as h2c:
        result = h2c.get("/scope?a=1", headers=[(b"x-custom", b"v")])
    assert result.status == 200
    scope = json.loads(result.body)
    assert scope["http_version"] == "2"
    assert scope["method"] == "GET" and scope["path"] == "/scope"
    assert scope["query_string"] == "a=1" and scope["scheme"] == "http"
    names = [name for name, _ in scope["headers"]]
    assert not any(name.startswith(":") for name in names)
    assert ["host", f"{h2_server.host}:{h2_server.port}"] in scope["headers"]
    assert ["x-custom", "v"] in scope["headers"]
    assert result.header(b"date") and result.header(b"server")


def test_request_body_and_echo(h2_server) -> None:
    body = bytes(range(256)) * 1000  # larger than one window: needs WINDOW_UPDATEs
    with client(h2_server) as h2c:
        stream_id = h2c.request("/echo", method="POST", body=None, end=False)
        sent = 0
        while sent < len(body):
            h2c.wait_for(lambda: h2c.conn.local_flow_control_window(stream_id) > 0,
                         what="send window")
            size = min(h2c.conn.local_flow_control_window(stream_id), 16384, len(body) - sent)
            h2c.conn.send_data(stream_id, body[sent:sent + size])
            sent += size
            h2c.flush()
        h2c.conn.end_stream(stream_id)
        h2c.flush()
        result = h2c.response(stream_id)
    assert result.status == 200 and result.body == body


def test_connection_headers_from_the_app_are_dropped(h2_server) -> None:
    with client(h2_server, validate=False) as h2c:
        result = h2c.get("/conn-headers")
    names = {name for name, _ in result.headers}
    assert result.status == 200 and result.header(b"x-kept") == b"yes"
    assert not names & {b"connection", b"keep-alive", b"transfer-encoding"}
    assert all(name == name.lower() for name in names)


def test_head_and_204_carry_no_body(h2_server) -> None:
    with client(h2_server) as h2c:
        head = h2c.get("/hello", method="HEAD")
        empty = h2c.get("/status/204")
    assert head.status == 200 and head.body == b"" and head.ended
    assert empty.status == 204 and empty.body == b""


def test_finished_streams_free_their_slot(start_server) -> None:
    """Each kind of ending (headers only, an empty last DATA frame, data, trailers) closes
    the stream for h2 too, so ten times the stream limit, one after another, all pass."""
    server = start_server(APP, "--h2-max-concurrent-streams", "2")
    with client(server) as h2c:
        for _ in range(5):
            assert h2c.get("/hello", method="HEAD").status == 200
            assert h2c.get("/status/204").status == 204
            assert h2c.get("/stream").status == 200
            assert h2c.get("/hello").status == 200
            assert h2c.get("/trailers").trailers == [(b"x-checksum", b"done")]


def test_body_over_max_body_size_is_413(start_server) -> None:
    server = start_server(APP, "--max-body-size", "1000")
    with client(server) as h2c:
        declared = h2c.get("/echo", method="POST", body=b"x" * 2000,
                           headers=[(b"content-length", b"2000")])
        undeclared = h2c.get("/echo", method="POST", body=b"x" * 2000)
        after = h2c.get("/hello")
    assert declared.status == 413 and undeclared.status == 413
    assert after.body == b"Hello, world!"


# -- many streams -------------------------------------------------------------------------


def test_many_concurrent_streams_and_the_advertised_limit(start_server) -> None:
    server = start_server(APP, "--h2-max-concurrent-streams", "40")
    with client(server) as h2c:
        h2c.wait_for(lambda: h2c.conn.remote_settings.max_concurrent_streams == 40,
                     what="the server's SETTINGS")
        streams = [h2c.request("/sleep?s=0.3") for _ in range(40)]
        results = [h2c.response(stream_id, timeout=20) for stream_id in streams]
    assert [r.body for r in results] == [b"slept"] * 40


def test_stream_over_the_concurrency_limit_is_refused(start_server) -> None:
    server = start_server(APP, "--h2-max-concurrent-streams", "2")
    with client(server) as h2c:
        h2c.wait_for(lambda: h2c.conn.remote_settings.max_concurrent_streams == 2,
                     what="SETTINGS")
        h2c.request("/sleep?s=2")
        h2c.request("/sleep?s=2")
        # Bypass the client's own check: a third stream is a protocol violation.
        h2c.conn.remote_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100})
        h2c.request("/hello")
        h2c.wait_closed()
    assert h2c.goaway is not None
    assert h2c.goaway.error_code in (h2.errors.ErrorCodes.PROTOCOL_ERROR,
                                     h2.errors.ErrorCodes.REFUSED_STREAM)


# -- flow control and back-pressure ----------------------------------------------------------


def test_response_respects_the_client_window(h2_server) -> None:
    with client(h2_server, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000},
                auto_window=False) as h2c:
        h2c.wait_for_settings_ack()
        stream_id = h2c.request("/sized?n=5000")
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: len(result.body) == 1000, what="the first window")
        h2c.pump(0.5)
        assert len(result.body) == 1000 and not result.ended  # nothing beyond the window
        h2c.conn.acknowledge_received_data(1000, stream_id)
        h2c.conn.increment_flow_control_window(4000, stream_id)
        h2c.flush()
        h2c.wait_for(lambda: result.ended, what="the rest after WINDOW_UPDATE")
    assert result.body == b"x" * 5000


def test_request_window_opens_only_as_the_app_reads(h2_server) -> None:
    """The app does not read: the client can send one window and no more (back-pressure)."""
    with client(h2_server) as h2c:
        held = h2c.request("/hold", method="POST", end=False)
        for start in range(0, 65535, 16384):
            h2c.conn.send_data(held, b"a" * min(16384, 65535 - start))
        h2c.flush()
        h2c.pump(1)
        h2c.pump(0.5)
        assert h2c.conn.local_flow_control_window(held) == 0
        with client(h2_server) as other:
            assert other.get("/release").body == b"released"
        h2c.wait_for(lambda: h2c.conn.local_flow_control_window(held) > 0,
                     what="WINDOW_UPDATE once the app read")
        h2c.conn.send_data(held, b"b" * 1000, end_stream=True)
        h2c.flush()
        assert h2c.response(held).body == b"66535"


def test_slow_reader_holds_back_a_large_response(h2_server) -> None:
    with client(h2_server, auto_window=False) as h2c:
        stream_id = h2c.request("/big?n=1000000")
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: len(result.body) == 65535, what="one window of data")
        h2c.pump(0.5)
        assert len(result.body) == 65535
        h2c.auto_window = True
        h2c.conn.acknowledge_received_data(65535, stream_id)
        h2c.flush()
        h2c.response(stream_id, timeout=30)
    assert len(result.body) == 1000000


# -- resets, errors, shutdown ---------------------------------------------------------------


def test_client_reset_disconnects_that_stream_only(h2_server, tmp_path: Path) -> None:
    marker = tmp_path / "received"
    with client(h2_server) as h2c:
        waiting = h2c.request(f"/wait-disconnect?file={marker}")
        other = h2c.request("/sleep?s=0.5")
        h2c.pump(0.3)
        h2c.conn.reset_stream(waiting, h2.errors.ErrorCodes.CANCEL)
        h2c.flush()
        wait_until(lambda: marker.exists() and marker.read_text() != "", what="app's receive")
        assert marker.read_text() == "http.disconnect"
        assert h2c.response(other).body == b"slept"
        assert h2c.get("/hello").body == b"Hello, world!"


def test_app_error_after_start_resets_only_that_stream(h2_server) -> None:
    with client(h2_server) as h2c:
        failing = h2c.request("/error/after")
        fine = h2c.request("/sleep?s=0.3")
        failed = h2c.response(failing)
        assert h2c.response(fine).body == b"slept"
        assert h2c.get("/hello").status == 200
    assert failed.reset_code == h2.errors.ErrorCodes.INTERNAL_ERROR
    assert not failed.ended


def test_app_error_before_start_is_500(h2_server) -> None:
    with client(h2_server) as h2c:
        assert h2c.get("/error/before").status == 500


def test_shutdown_sends_goaway_and_lets_open_streams_finish(start_server) -> None:
    server = start_server(APP, "--shutdown-timeout", "10")
    with client(server) as h2c:
        slow = h2c.request("/sleep?s=4")
        h2c.pump(0.3)
        server.send_signal(signal.SIGTERM)
        h2c.wait_for(lambda: h2c.goaway is not None, what="GOAWAY")
        assert not h2c.streams[slow].ended  # GOAWAY comes first, not after the last stream
        assert h2c.goaway.last_stream_id == slow
        assert h2c.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
        late = h2c.request("/hello")  # after GOAWAY: refused, never run
        assert h2c.response(late).reset_code == h2.errors.ErrorCodes.REFUSED_STREAM
        assert h2c.response(slow).body == b"slept"
        h2c.wait_closed()
    assert server.stop() == 0


def test_idle_connection_is_closed_after_keep_alive_timeout(start_server) -> None:
    # 2 s, not 1: the first request must reach a loaded machine's server before
    # the idle timer that starts with the connection runs out.
    server = start_server(APP, "--keep-alive-timeout", "2")
    with client(server) as h2c:
        assert h2c.get("/hello").status == 200
        h2c.wait_closed(timeout=15)


# -- flood and abuse defences ---------------------------------------------------------------


def _closed_for_flood(server: ServerProcess, h2c: H2Client, what: str) -> None:
    h2c.wait_closed()
    server.wait_for_log(f"HTTP/2 .*{what}")
    assert "Traceback" not in server.output


def test_rapid_reset_closes_the_connection(h2_server) -> None:
    with client(h2_server) as h2c:
        with contextlib.suppress(OSError):
            for _ in range(300):
                stream_id = h2c.request("/sleep?s=5")
                h2c.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            h2c.flush()
        _closed_for_flood(h2_server, h2c, "rapid reset")
    assert h2c.goaway is None or h2c.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    with client(h2_server) as fresh:
        assert fresh.get("/hello").status == 200


@pytest.mark.parametrize(("frame", "what"), [
    (SettingsFrame(0), "SETTINGS"),
    (PingFrame(0, opaque_data=b"12345678"), "PING"),
])
def test_settings_and_ping_floods_close_the_connection(h2_server, frame, what) -> None:
    with client(h2_server) as h2c:
        data = frame.serialize() * 500
        with contextlib.suppress(OSError):
            h2c.send_raw(data)
        _closed_for_flood(h2_server, h2c, what)


def test_empty_data_frame_flood_closes_the_connection(h2_server) -> None:
    with client(h2_server) as h2c:
        stream_id = h2c.request("/hold", method="POST", end=False)
        with contextlib.suppress(OSError):
            h2c.send_raw(DataFrame(stream_id, b"").serialize() * 500)
        _closed_for_flood(h2_server, h2c, "empty DATA")


def test_hpack_bomb_closes_the_connection(start_server) -> None:
    server = start_server(APP, "--max-header-size", "8192")
    with client(server) as h2c:
        h2c.wait_for_settings_ack()
        # One large header in the dynamic table, then referenced many times: small on
        # the wire, huge once decoded.
        big = b"x" * 4000
        with contextlib.suppress(OSError):
            h2c.request("/hello", headers=[(b"x-bomb", big)])
            for _ in range(3):
                h2c.request("/hello", headers=[(b"x-bomb", big)] * 20)
        h2c.wait_closed()
    server.wait_for_log("HTTP/2 .*(denial-of-service|protocol error)")
    assert "Traceback" not in server.output


def test_endless_continuation_frames_close_the_connection(h2_server) -> None:
    with client(h2_server) as h2c:
        headers = h2c.conn.encoder.encode([(b":method", b"GET"), (b":path", b"/"),
                                           (b":scheme", b"http"), (b":authority", b"x")])
        first = HeadersFrame(1, headers)  # no END_HEADERS: CONTINUATION must follow
        data = first.serialize() + ContinuationFrame(1, b"").serialize() * 2000
        with contextlib.suppress(OSError):
            h2c.send_raw(data)
        h2c.wait_closed()
    h2_server.wait_for_log("(?i)HTTP/2 .*continuation")
    assert "Traceback" not in h2_server.output


# -- conformance (the areas of h2spec) -------------------------------------------------------


def _goaway_code(h2c: H2Client) -> int | None:
    h2c.wait_closed()
    return None if h2c.goaway is None else int(h2c.goaway.error_code)


def test_frame_larger_than_max_frame_size_is_frame_size_error(h2_server) -> None:
    with client(h2_server) as h2c:
        stream_id = h2c.request("/echo", method="POST", end=False)
        h2c.send_raw(DataFrame(stream_id, b"x" * 20000).serialize())
        assert _goaway_code(h2c) == h2.errors.ErrorCodes.FRAME_SIZE_ERROR


def test_data_on_an_idle_stream_is_protocol_error(h2_server) -> None:
    with client(h2_server) as h2c:
        h2c.send_raw(DataFrame(5, b"x").serialize())
        assert _goaway_code(h2c) == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_window_overflow_is_flow_control_error(h2_server) -> None:
    with client(h2_server) as h2c:
        h2c.send_raw(WindowUpdateFrame(0, window_increment=2**31 - 1).serialize())
        assert _goaway_code(h2c) == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR


def test_invalid_initial_window_setting_is_flow_control_error(h2_server) -> None:
    with client(h2_server) as h2c:
        h2c.send_raw(SettingsFrame(0, settings={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31}).serialize())
        assert _goaway_code(h2c) == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR


def test_invalid_hpack_block_is_compression_error(h2_server) -> None:
    with client(h2_server) as h2c:
        h2c.send_raw(HeadersFrame(1, b"\xff\xff\xff\xff\xff",
                                  flags=["END_HEADERS", "END_STREAM"]).serialize())
        assert _goaway_code(h2c) == h2.errors.ErrorCodes.COMPRESSION_ERROR


def test_priority_frames_are_accepted_and_self_dependency_refused(h2_server) -> None:
    with client(h2_server) as h2c:
        h2c.send_raw(PriorityFrame(3, depends_on=0, stream_weight=200).serialize())
        assert h2c.get("/hello").status == 200
        h2c.send_raw(PriorityFrame(7, depends_on=7).serialize())
        h2c.wait_for(lambda: h2c.closed or (h2c.streams.get(7, None) is not None
                     and h2c.streams[7].reset_code is not None) or h2c.goaway is not None,
                     what="an answer to a self-dependent stream")
        assert h2c.goaway is None or h2c.goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


_GET = [(b":method", b"GET"), (b":path", b"/scope"), (b":scheme", b"http"),
        (b":authority", b"x")]


@pytest.mark.parametrize("fields", [
    [*_GET, (b"X-Upper", b"1")],  # upper-case name
    [*_GET, (b"x bad", b"1")],  # space in a name
    [*_GET, (b"x:y", b"1")],  # colon inside a name
    [*_GET, (b"x-\x80", b"1")],  # a byte over 0x7f in a name
    [*_GET, (b"", b"1")],  # empty name
    [*_GET, (b"x-v", b"a\r\nb")],  # CR LF in a value
    [*_GET, (b"x-v", b"a\x00b")],  # NUL in a value
    [*_GET, (b"x-v", b" a")],  # leading space in a value
    [*_GET, (b"x-v", b"a\t")],  # trailing tab in a value
    [*_GET, (b"connection", b"keep-alive")],  # connection-specific fields
    [*_GET, (b"transfer-encoding", b"chunked")],
    [*_GET, (b"keep-alive", b"timeout=5")],
    [*_GET, (b"upgrade", b"h2c")],
    [*_GET, (b"proxy-connection", b"close")],
    [*_GET, (b"te", b"gzip")],  # te other than trailers
    [*_GET, (b":foo", b"x")],  # unknown pseudo-header
    [*_GET, (b":status", b"200")],  # a response pseudo-header
    [*_GET[:3], (b"x-a", b"1"), (b":authority", b"x")],  # pseudo after a regular field
    [*_GET, (b":method", b"POST")],  # duplicates
    [*_GET, (b":path", b"/")],
    [*_GET, (b":scheme", b"https")],
    [*_GET, (b":authority", b"y")],
    [*_GET[1:]],  # no :method
    [_GET[0], *_GET[2:]],  # no :path
    [*_GET[:2], _GET[3]],  # no :scheme
    [_GET[0], (b":path", b""), *_GET[2:]],  # empty :path
    [*_GET, (b":protocol", b"websocket")],  # :protocol without CONNECT
    [(b":method", b"CONNECT"), (b":authority", b"x"), (b":path", b"/")],  # plain CONNECT
    [*_GET[:3]],  # neither :authority nor host
    [*_GET, (b"host", b"other")],  # host differs from :authority
    [*_GET[:3], (b"host", b"x"), (b"host", b"x")],  # two host fields
], ids=lambda fields: repr(fields)[-40:])
def test_malformed_request_resets_only_that_stream(h2_server, fields) -> None:
    """RFC 9113 8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR."""
    with client(h2_server) as h2c:
        stream_id = h2c.send_block(fields)
        result = h2c.response(stream_id)
        assert result.reset_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        assert not result.headers
        assert h2c.get("/hello").status == 200  # the connection goes on
    assert "Traceback" not in h2_server.output


@pytest.mark.parametrize("trailers", [
    [(b":path", b"/")],  # a pseudo-header in trailers
    [(b"X-Upper", b"1")],
    [(b"x-v", b"a\r\nb")],
    [(b"connection", b"close")],
])
def test_malformed_request_trailers_reset_that_stream(h2_server, trailers) -> None:
    with client(h2_server) as h2c:
        # /echo answers only after the whole body, trailers included, is in.
        stream_id = h2c.send_block([(b":method", b"POST"), (b":path", b"/echo"), *_GET[2:]],
                                   end=False)
        h2c.conn.send_data(stream_id, b"body")
        h2c.send_block(trailers, stream_id=stream_id)
        result = h2c.response(stream_id)
        assert result.reset_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        assert h2c.get("/hello").status == 200


def test_provoked_resets_count_against_the_rapid_reset_limit(h2_server) -> None:
    """Malformed trailers make the server reset streams whose apps may still run
    ("MadeYouReset", CVE-2025-8671): like resets the client sends, they are limited."""
    with client(h2_server) as h2c:
        with contextlib.suppress(OSError):
            for _ in range(300):
                stream_id = h2c.send_block(
                    [(b":method", b"POST"), (b":path", b"/echo"), *_GET[2:]], end=False)
                h2c.conn.send_data(stream_id, b"body")
                h2c.send_block([(b":path", b"/x")], stream_id=stream_id)
        _closed_for_flood(h2_server, h2c, "malformed streams")
    assert h2c.goaway is None or h2c.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    with client(h2_server) as fresh:
        assert fresh.get("/hello").status == 200


def test_the_reserved_bit_of_a_stream_id_is_ignored(h2_server) -> None:
    """RFC 9113 4.1: a HEADERS frame whose stream id has the reserved bit set is
    stream 1 all the same; stream 3 then opens as usual."""
    import struct

    with client(h2_server) as h2c:
        block = h2c.conn.encoder.encode(_GET)
        h2c.send_raw(struct.pack(">BHBBL", 0, len(block), 0x1, 0x5, 0x80000001) + block)
        h2c.streams[1] = StreamResult()
        h2c.conn._begin_new_stream(1, h2.connection.AllowedStreamIDs.ODD)
        h2c.conn.streams[1].state_machine.process_input(h2.stream.StreamInputs.SEND_HEADERS)
        h2c.conn.streams[1].state_machine.process_input(
            h2.stream.StreamInputs.SEND_END_STREAM)
        assert h2c.response(1).status == 200
        assert h2c.get("/hello").status == 200  # stream 3


def test_a_huge_header_table_size_from_the_client_is_not_taken(start_server) -> None:
    """The client may allow a table of any size; ours for responses stays at 4 KiB."""
    server = start_server(APP)
    with client(server, settings={h2.settings.SettingCodes.HEADER_TABLE_SIZE: 1 << 24}) as h2c:
        for seed in "abcdefgh":
            result = h2c.get(f"/fields?n=8&size=200&seed={seed}")
            assert _received_fields(result) == _expected_fields(seed, 8, 200)
            table = h2c.conn.decoder.header_table.dynamic_entries  # what our encoder added
            assert sum(32 + len(name) + len(value) for name, value in table) <= 4096


def test_the_header_list_limit_advertised_is_the_one_enforced(start_server) -> None:
    """MAX_HEADER_SIZE holds from the first request, before the client has even
    acknowledged the SETTINGS that advertise it."""
    server = start_server(APP, "--max-header-size", "2000")
    with client(server) as h2c:
        stream_id = h2c.request("/hello", headers=[(b"x-a", b"a" * 2500)])
        with contextlib.suppress(OSError):
            h2c.wait_closed()
    assert not h2c.streams[stream_id].headers  # never answered: the connection was refused
    assert h2c.goaway is not None
    assert h2c.goaway.error_code != h2.errors.ErrorCodes.NO_ERROR
    with client(server) as fresh:
        assert fresh.get("/hello", headers=[(b"x-a", b"a" * 1500)]).status == 200
    assert "Traceback" not in server.output


def test_well_formed_fields_reach_the_scope(h2_server) -> None:
    """te: trailers, a host equal to :authority and cookie crumbs (joined, RFC 9113 8.2.3)."""
    with client(h2_server) as h2c:
        stream_id = h2c.send_block([*_GET, (b"te", b"trailers"), (b"host", b"x"),
                                    (b"cookie", b"a=1"), (b"x-empty", b""),
                                    (b"cookie", b"b=2")])
        result = h2c.response(stream_id)
    assert result.status == 200
    headers = json.loads(result.body)["headers"]
    assert ["cookie", "a=1; b=2"] in headers
    assert ["host", "x"] in headers and ["te", "trailers"] in headers
    assert ["x-empty", ""] in headers
    assert sum(name in ("cookie", "host") for name, _ in headers) == 2


def test_rst_stream_on_idle_stream_is_protocol_error(h2_server) -> None:
    with client(h2_server) as h2c:
        h2c.send_raw(RstStreamFrame(9).serialize())
        assert _goaway_code(h2c) == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_garbage_after_the_preface_costs_that_connection_only(h2_server) -> None:
    with h2_server.connect() as sock:
        # The first frame after the preface must be SETTINGS (RFC 9113 3.4).
        sock.sendall(PREFACE + PingFrame(0, opaque_data=b"12345678").serialize())
        received = recv_until_closed(sock, timeout=30)
    goaways = [frame for frame in parse_frames(received) if isinstance(frame, GoAwayFrame)]
    assert goaways and goaways[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    with client(h2_server) as h2c:
        assert h2c.get("/hello").status == 200
    assert "Traceback" not in h2_server.output


# -- ordinary clients ----------------------------------------------------------------------


def test_curl_http2_prior_knowledge(h2_server) -> None:
    result = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-w", "%{http_version}",
                             f"{h2_server.url}/hello"], capture_output=True, text=True,
                            timeout=30)
    assert result.stdout == "Hello, world!2", result.stderr


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("h2tls")
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return ca, folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_server(start_server, tls_files) -> ServerProcess:
    _, cert, key = tls_files
    return start_server(APP, "--ssl-cert-path", str(cert), "--ssl-key-path", str(key))


def test_httpx_http2_over_tls(tls_server, tls_files) -> None:
    ca, *_ = tls_files
    with ca.cert_pem.tempfile() as ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        with httpx.Client(http2=True, verify=context) as http:
            responses = [http.get(f"{tls_server.url}/scope") for _ in range(3)]
    for response in responses:
        assert response.http_version == "HTTP/2"
        scope = response.json()
        assert scope["scheme"] == "https" and scope["http_version"] == "2"
        assert scope["extensions"]["tls"]["tls_version"] in (0x0303, 0x0304)


def test_curl_http2_over_tls(tls_server, tls_files) -> None:
    ca_path = tls_files[1].parent / "ca.pem"
    result = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(ca_path),
                             "-w", "%{http_version}", f"{tls_server.url}/hello"],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout == "Hello, world!2", result.stderr


def test_h2_client_over_tls_alpn(tls_server, tls_files) -> None:
    ca, *_ = tls_files
    with ca.cert_pem.tempfile() as ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        with H2Client(tls_server.host, tls_server.port, tls=context) as h2c:
            assert json.loads(h2c.get("/scope").body)["scheme"] == "https"


@pytest.mark.skipif(shutil.which("h2load") is None,
                    reason="h2load is not installed (.ci/run installs nghttp2-client)")
def test_h2load_many_streams(h2_server) -> None:
    result = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "50",
                             f"{h2_server.url}/hello"], capture_output=True, text=True,
                            timeout=60)
    assert "2000 succeeded, 0 failed, 0 errored" in result.stdout, result.stdout
    assert "Traceback" not in h2_server.output


# -- ASGI extensions -------------------------------------------------------------------------


def test_extensions_are_advertised_in_the_scope(h2_server) -> None:
    with client(h2_server) as h2c:
        extensions = json.loads(h2c.get("/scope").body)["extensions"]
    assert {"http.response.trailers", "http.response.early_hint",
            "http.response.push"} <= set(extensions)


def test_push_is_not_advertised_when_the_client_disables_it(h2_server) -> None:
    with client(h2_server, settings={h2.settings.SettingCodes.ENABLE_PUSH: 0}) as h2c:
        h2c.wait_for_settings_ack()
        result = h2c.get("/push")
        extensions = json.loads(h2c.get("/scope").body)["extensions"]
    assert "http.response.push" not in extensions
    assert result.body == b"pushed one" and not h2c.pushed


def test_response_trailers(h2_server) -> None:
    with client(h2_server) as h2c:
        result = h2c.get("/trailers")
    assert result.status == 200 and result.body == b"body"
    assert result.trailers == [(b"x-checksum", b"done")]


def test_trailers_wait_for_the_flow_control_window(h2_server) -> None:
    with client(h2_server, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2},
                auto_window=False) as h2c:
        h2c.wait_for_settings_ack()
        stream_id = h2c.request("/trailers")
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: result.body == b"bo", what="the first window")
        h2c.pump(0.3)
        assert not result.trailers and not result.ended
        h2c.conn.increment_flow_control_window(10, stream_id)
        h2c.flush()
        h2c.response(stream_id)
    assert result.body == b"body" and result.trailers == [(b"x-checksum", b"done")]


def test_early_hints_are_a_103_before_the_response(h2_server) -> None:
    with client(h2_server) as h2c:
        result = h2c.get("/early-hints")
    assert len(result.informational) == 1
    hint = dict(result.informational[0])
    assert hint[b":status"] == b"103"
    assert hint[b"link"] == b"</style.css>; rel=preload; as=style"
    assert result.status == 200 and result.body == b"after hints"


def test_server_push(h2_server) -> None:
    with client(h2_server) as h2c:
        result = h2c.get("/push")
        assert result.body == b"pushed one"
        assert len(h2c.pushed) == 1
        (promised, request), = h2c.pushed.items()
        assert dict(request)[b":path"] == b"/pushed"
        assert promised % 2 == 0  # server-initiated streams are even
        pushed = h2c.response(promised)
    assert pushed.status == 200 and pushed.body == b"I was pushed"


@pytest.mark.parametrize(("te", "expected"), [
    (b"TE: trailers\r\n", b"4\r\nbody\r\n0\r\nx-checksum: done\r\n\r\n"),
    (b"", b"4\r\nbody\r\n0\r\n\r\n"),
])
def test_http11_trailers_only_for_clients_that_take_them(h2_server, te, expected) -> None:
    with h2_server.connect() as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\n" + te + b"Connection: close\r\n\r\n")
        data = recv_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == expected


# -- h2c upgrade from HTTP/1.1 -----------------------------------------------------------------


def test_curl_h2c_upgrade(h2_server) -> None:
    result = subprocess.run(["curl", "-sS", "--http2", "-w", " %{http_version}",
                             f"{h2_server.url}/scope"], capture_output=True, text=True,
                            timeout=30)
    body, _, version = result.stdout.rpartition(" ")
    assert version == "2", result.stdout + result.stderr
    assert json.loads(body)["http_version"] == "2"


def test_h2c_upgrade_answers_the_request_as_stream_1(h2_server) -> None:
    with client(h2_server, send_preface=False) as h2c:
        settings = h2c.conn.initiate_upgrade_connection()
        h2c.send_raw(b"GET /scope?via=upgrade HTTP/1.1\r\nHost: example.org\r\n"
                     b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                     b"HTTP2-Settings: " + settings + b"\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = h2c.sock.recv(1)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"upgrade: h2c" in head.lower()
        h2c.flush()  # the client preface
        h2c.streams.setdefault(1, StreamResult())
        result = h2c.response(1)
        scope = json.loads(result.body)
        assert scope["http_version"] == "2" and scope["query_string"] == "via=upgrade"
        assert ["host", "example.org"] in scope["headers"]
        assert not any(name in ("upgrade", "http2-settings", "connection")
                       for name, _ in scope["headers"])
        assert h2c.get("/hello").body == b"Hello, world!"  # the connection goes on in HTTP/2


def test_h2c_upgrade_is_ignored_when_http2_is_off(start_server) -> None:
    server = start_server(APP, "--http2", "off")
    result = subprocess.run(["curl", "-sS", "--http2", "-w", " %{http_version}",
                             f"{server.url}/hello"], capture_output=True, text=True, timeout=30)
    assert result.stdout == "Hello, world! 1.1", result.stderr


def test_request_timeout_answers_504_on_that_stream(start_server) -> None:
    server = start_server(APP, "--request-timeout", "1")
    with client(server) as h2c:
        slow = h2c.request("/sleep?s=30")
        fast = h2c.request("/hello")
        assert h2c.response(fast).body == b"Hello, world!"
        assert h2c.response(slow, timeout=20).status == 504
        assert h2c.get("/hello").status == 200
        # Later streams, started one after the other: each is timed from its own start.
        second = h2c.request("/sleep?s=30")
        h2c.get("/hello")
        third = h2c.request("/sleep?s=30")
        assert h2c.response(second, timeout=20).status == 504
        assert h2c.response(third, timeout=20).status == 504


def test_too_many_header_fields_is_431_on_that_stream(start_server) -> None:
    server = start_server(APP, "--max-header-count", "10")
    with client(server) as h2c:
        crowded = h2c.get("/hello", headers=[(b"x-h%d" % i, b"v") for i in range(12)])
        assert crowded.status == 431
        assert h2c.get("/hello").status == 200


# -- HPACK: our encoder's dynamic table, the decoder's memory of blocks ---------------------


def _expected_fields(seed: str, count: int, size: int) -> list[tuple[bytes, bytes]]:
    return [(f"x-field-{i}".encode(), field_value(seed, i, size)) for i in range(count)]


def _received_fields(result: StreamResult) -> list[tuple[bytes, bytes]]:
    return [(bytes(name), bytes(value)) for name, value in result.headers
            if name.startswith(b"x-field-")]


@pytest.mark.parametrize("table_size", [None, 0, 100])
def test_response_headers_through_table_eviction_and_size_settings(start_server,
                                                                   table_size) -> None:
    """Fields are added to the table, evicted oldest first, and referred to by index; the
    client's SETTINGS_HEADER_TABLE_SIZE is taken (its decoder checks each of these)."""
    server = start_server(APP)
    settings = None if table_size is None else {
        h2.settings.SettingCodes.HEADER_TABLE_SIZE: table_size}
    with client(server, settings=settings) as h2c:
        for round_number in range(3):
            for seed, count, size in [("a", 8, 100), ("b", 8, 100), ("a", 8, 100),
                                      ("c", 3, 900), ("d", 2, 1500), ("e", 1, 30000),
                                      ("a", 8, 100), (f"r{round_number}", 20, 30)]:
                result = h2c.get(f"/fields?n={count}&size={size}&seed={seed}")
                assert result.status == 200
                assert _received_fields(result) == _expected_fields(seed, count, size)
            if round_number == 1:
                h2c.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 50})
                h2c.flush()


def test_set_cookie_is_never_indexed(h2_server) -> None:
    with client(h2_server) as h2c:
        for _ in range(2):
            result = h2c.get("/fields?n=0&size=1&seed=s")
            cookie = next(field for field in result.headers if field[0] == b"set-cookie")
            assert isinstance(cookie, NeverIndexedHeaderTuple)
            assert cookie[1] == b"session=secret"


def _literal(data: bytes) -> bytes:
    return bytes((len(data),)) + data  # an HPACK string, not Huffman-coded


def test_a_repeated_block_is_decoded_in_the_current_table(h2_server) -> None:
    """The same block bytes, after the client added to its table, mean something else."""
    with client(h2_server) as h2c:
        authority = b"\x01" + _literal(h2c.host)  # :authority, not added to the table
        # GET, http, then :path: a literal added to the table (index 62) or that entry.
        def adding(path: bytes) -> bytes:
            return b"\x82\x86\x44" + _literal(path) + authority
        referring = b"\x82\x86\xbe" + authority
        queries = []
        for block in [adding(b"/scope?n=1"), referring, referring, adding(b"/scope?n=2"),
                      referring, referring]:
            result = h2c.response(h2c.send_raw_block(block))
            assert result.status == 200
            queries.append(json.loads(result.body)["query_string"])
    assert queries == ["n=1", "n=1", "n=1", "n=2", "n=2", "n=2"]


# -- the frames data_received reads itself (new streams' HEADERS) and those it leaves to h2 --


def test_frames_split_anywhere_across_reads(h2_server) -> None:
    """Frames (requests, one with a body) cut into pieces of 1 to 13 bytes, sent one by one."""
    import socket
    import time

    with client(h2_server, send_preface=False) as h2c:
        h2c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        streams = queue_scope_requests(h2c)
        data = h2c.conn.data_to_send()
        h2c.sock.sendall(data[:len(PREFACE)])  # (HTTP/1.1's parser needs it whole to hand over)
        at = len(PREFACE)
        for size in itertools.cycle(range(1, 14)):
            if at >= len(data):
                break
            h2c.sock.sendall(data[at:at + size])
            at += size
            time.sleep(0.005)  # separate reads on the server, most of the time
        check_scope_answers(h2c, streams)


@pytest.mark.parametrize(("copies", "requests"), [(40, 1), (3, 8)])
def test_frames_inside_a_request_body_are_only_body(h2_server, copies, requests) -> None:
    """Bodies made of HEADERS frames for stream 99, cut across reads anywhere: they are
    echoed byte for byte and stream 99 is never opened (the server keeps to frame
    boundaries)."""
    import socket
    import time

    smuggled = HeadersFrame(99, Encoder().encode(_GET), flags=["END_HEADERS", "END_STREAM"])
    body = smuggled.serialize() * copies
    with client(h2_server) as h2c:
        h2c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert h2c.get("/hello").status == 200
        streams = []
        for _ in range(requests):
            stream_id = h2c.conn.get_next_available_stream_id()
            h2c.streams[stream_id] = StreamResult()
            h2c.conn.send_headers(stream_id, [(b":method", b"POST"), (b":path", b"/echo"),
                                              *_GET[2:]])
            h2c.conn.send_data(stream_id, body, end_stream=True)
            streams.append(stream_id)
        data = h2c.conn.data_to_send()
        at = 0
        for size in itertools.cycle([7, 40, 1, 23, 5, 3, 61, 16, 2, 11]):
            if at >= len(data):
                break
            h2c.sock.sendall(data[at:at + size])
            at += size
            time.sleep(0.003)  # separate reads on the server, most of the time
        for stream_id in streams:
            result = h2c.response(stream_id)
            assert result.status == 200 and result.body == body
        assert h2c.get("/hello").status == 200
        assert 99 not in h2c.streams and not h2c.closed


def _raw_exchange(server: ServerProcess, frames: list, streams: set[int]
                  ) -> dict[int, tuple[dict[bytes, bytes], bytes]]:
    """Send `frames` after the preface and SETTINGS; read the answers on `streams`."""
    decoder = Decoder()
    answers: dict[int, tuple[dict[bytes, bytes], bytes]] = {}
    ended: set[int] = set()
    with server.connect() as sock:
        sock.sendall(PREFACE + SettingsFrame(0).serialize()
                     + b"".join(frame.serialize() for frame in frames))
        sock.settimeout(10)
        received = b""
        while ended != streams:
            chunk = sock.recv(65536)
            assert chunk, f"closed with streams {streams - ended} unanswered"
            received += chunk
            while len(received) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(received[:9]))
                if len(received) < 9 + length:
                    break
                frame.parse_body(memoryview(received[9:9 + length]))
                received = received[9 + length:]
                if isinstance(frame, HeadersFrame):
                    answers[frame.stream_id] = (dict(decoder.decode(frame.data, raw=True)), b"")
                elif isinstance(frame, DataFrame):
                    headers, body = answers[frame.stream_id]
                    answers[frame.stream_id] = (headers, body + frame.data)
                if "END_STREAM" in frame.flags:
                    ended.add(frame.stream_id)
    return answers


def test_continuation_padded_and_priority_headers_are_served(h2_server) -> None:
    """Header blocks h2 reads (over CONTINUATION, padded, with priority) among those read
    by the server itself, on one connection."""
    encoder = Encoder()
    def block(path: bytes) -> bytes:
        return encoder.encode([*_GET[:1], (b":path", path), *_GET[2:], (b"x-long", b"v" * 300)])
    first = block(b"/scope?n=first")  # (blocks in the order they are sent: one HPACK context)
    whole = block(b"/scope?n=continued")
    frames = [HeadersFrame(1, first, flags=["END_HEADERS", "END_STREAM"]),
              HeadersFrame(3, whole[:100], flags=["END_STREAM"]),
              ContinuationFrame(3, whole[100:200]),
              ContinuationFrame(3, whole[200:], flags=["END_HEADERS"]),
              HeadersFrame(5, block(b"/scope?n=padded"), pad_length=7,
                           flags=["END_HEADERS", "END_STREAM", "PADDED"]),
              HeadersFrame(7, block(b"/scope?n=priority"), depends_on=0, stream_weight=9,
                           flags=["END_HEADERS", "END_STREAM", "PRIORITY"]),
              HeadersFrame(9, block(b"/scope?n=plain"), flags=["END_HEADERS", "END_STREAM"])]
    answers = _raw_exchange(h2_server, frames, {1, 3, 5, 7, 9})
    for stream_id, query in [(1, "n=first"), (3, "n=continued"), (5, "n=padded"),
                             (7, "n=priority"), (9, "n=plain")]:
        headers, body = answers[stream_id]
        assert headers[b":status"] == b"200"
        assert json.loads(body)["query_string"] == query


def _frames_until_closed(server: ServerProcess, frames: list) -> list:
    """Send `frames` after the preface and SETTINGS; every frame received until the close."""
    with server.connect() as sock:
        sock.sendall(PREFACE + SettingsFrame(0).serialize()
                     + b"".join(frame.serialize() for frame in frames))
        received = recv_until_closed(sock, timeout=30)
    return parse_frames(received)


@pytest.mark.parametrize("stream_ids", [(1, 1), (5, 3), (2,)], ids=["reused", "lower", "even"])
def test_headers_on_a_used_lower_or_even_stream_id_is_not_served(start_server,
                                                                 stream_ids) -> None:
    """Only new, odd, increasing stream ids open a stream (RFC 9113 5.1.1): h2 answers the
    others with a stream or connection error (the close may reset what is in flight)."""
    server = start_server(APP, "--keep-alive-timeout", "1")
    encoder = Encoder()
    frames = [HeadersFrame(stream_id, encoder.encode(_GET), flags=["END_HEADERS", "END_STREAM"])
              for stream_id in stream_ids]
    answer = _frames_until_closed(server, frames)
    served = [frame.stream_id for frame in answer if isinstance(frame, HeadersFrame)]
    refused = stream_ids[-1]
    if stream_ids == (refused, refused):
        assert served.count(refused) <= 1  # the first request at most (the close may cut it)
    else:
        assert refused not in served
    with client(server) as h2c:
        assert h2c.get("/hello").status == 200
    assert "Traceback" not in server.output


def test_headers_in_the_middle_of_a_header_block_is_protocol_error(h2_server) -> None:
    with client(h2_server) as h2c:
        encoder = h2c.conn.encoder
        whole = encoder.encode(_GET)
        h2c.send_raw(HeadersFrame(1, whole[:3], flags=["END_STREAM"]).serialize()
                     + HeadersFrame(3, encoder.encode(_GET),
                                    flags=["END_HEADERS", "END_STREAM"]).serialize())
        assert _goaway_code(h2c) == h2.errors.ErrorCodes.PROTOCOL_ERROR
