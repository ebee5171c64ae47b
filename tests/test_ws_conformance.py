"""RFC 6455 conformance with raw frames (what the Autobahn testsuite checks, in pytest).

Each test writes exact bytes with tests/ws_client.py and checks the server's
exact reaction: the echoed message, the pong, or the close code followed by
the end of the TCP connection.  The app is apps.ws_app's echo.
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.lifespan_apps import EVENTS_VAR
from conftest import ServerFactory, ServerProcess, file_lines, wait_until
from ws_client import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    RSV1,
    RSV2,
    RSV3,
    TEXT,
    Deflater,
    RawWebSocket,
    close_payload,
    frame,
)

MAX_SIZE = 100_000


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws") / "events.txt"


@pytest.fixture(scope="module")
def server(events: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.ws_app:app", "--host", "127.0.0.1", "--port", "0",
                            "--ws-max-size", str(MAX_SIZE), "--no-access-log"],
                           env={EVENTS_VAR: str(events)})
    yield server
    assert server.stop() == 0, server.output


@pytest.fixture
def ws(server: ServerProcess) -> Iterator[RawWebSocket]:
    client = RawWebSocket.connect(server, "/echo")
    assert client.accepted, client.status
    yield client
    client.close()


def echo_of(ws: RawWebSocket) -> tuple[int, bytes]:
    received = ws.recv_data_frame()
    assert received.fin and received.rsv == 0
    return received.opcode, received.payload


# -- framing ---------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_payload_lengths_in_every_length_encoding(ws: RawWebSocket, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    ws.send_frame(BINARY, payload)
    assert echo_of(ws) == (BINARY, payload)
    ws.send_frame(TEXT, b"a" * size)
    assert echo_of(ws) == (TEXT, b"a" * size)


def test_several_frames_in_one_write_and_one_frame_in_many_writes(ws: RawWebSocket) -> None:
    ws.send(frame(TEXT, b"one") + frame(TEXT, b"two") + frame(BINARY, b"\x00three"))
    assert [echo_of(ws) for _ in range(3)] == [(TEXT, b"one"), (TEXT, b"two"),
                                               (BINARY, b"\x00three")]
    data = frame(TEXT, "byte by byte ✓".encode())
    for index in range(len(data)):
        ws.send(data[index:index + 1])
    assert echo_of(ws) == (TEXT, "byte by byte ✓".encode())


def test_a_large_frame_in_small_writes_then_more_frames_in_its_last_write(
        ws: RawWebSocket) -> None:
    # The server reads whole frames before its frame engine sees them: a frame that
    # arrives in 91 writes is held until complete, and what follows it in the same
    # write is read in order after it.
    large = bytes(range(256)) * 350  # 89,600 bytes, under the 100,000 limit
    data = frame(BINARY, large)
    last = len(data) - 500
    for start in range(0, last, 1000):
        ws.send(data[start:min(start + 1000, last)])
    ws.send(data[last:] + frame(PING, b"p") + frame(TEXT, b"next"))
    pong = ws.recv_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"p")
    assert [echo_of(ws) for _ in range(2)] == [(BINARY, large), (TEXT, b"next")]


def test_a_header_split_inside_its_extended_length(ws: RawWebSocket) -> None:
    for size in (300, 70_000):  # a 16-bit and a 64-bit length field, each cut in two
        data = frame(TEXT, b"s" * size)
        ws.send(data[:3])
        ws.send(data[3:7])
        ws.send(data[7:])
        assert echo_of(ws) == (TEXT, b"s" * size)


def test_a_whole_message_right_after_a_fragmented_one(ws: RawWebSocket) -> None:
    ws.send(frame(TEXT, b"frag", fin=False) + frame(CONT, b"mented") + frame(TEXT, b"whole")
            + frame(BINARY, b"\x00", fin=False) + frame(CONT, b"\x01") + frame(BINARY, b"\x02"))
    assert [echo_of(ws) for _ in range(4)] == [(TEXT, b"fragmented"), (TEXT, b"whole"),
                                               (BINARY, b"\x00\x01"), (BINARY, b"\x02")]


def test_nothing_is_delivered_after_invalid_utf8_in_the_same_write(ws: RawWebSocket) -> None:
    # The close frame is written while the bytes are read, before the app runs: its
    # echo of "ok" comes too late to be sent, and "after" is never delivered.
    ws.send(frame(TEXT, b"ok") + frame(TEXT, b"\xff") + frame(TEXT, b"after"))
    ws.expect_close(1007)


def test_a_frame_cut_short_by_the_end_of_the_stream_is_1006(server: ServerProcess,
                                                             events: Path) -> None:
    ws = RawWebSocket.connect(server, "/echo?cut")
    ws.send(frame(BINARY, b"c" * 1000)[:500])
    ws.sock.shutdown(socket.SHUT_WR)
    ws.expect_tcp_closed()
    wait_until(lambda: "/echo disconnect 1006 " in file_lines(events),
               what="the app's websocket.disconnect with 1006")


def test_unmasked_client_frame_is_a_protocol_error(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"naked", masked=False)
    ws.expect_close(1002)


# -- fragmentation ---------------------------------------------------------


def test_fragmented_text_and_binary_messages_are_reassembled(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"frag", fin=False)
    ws.send_frame(CONT, b"", fin=False)
    ws.send_frame(CONT, b"men", fin=False)
    ws.send_frame(CONT, b"ted", fin=True)
    assert echo_of(ws) == (TEXT, b"fragmented")
    ws.send_frame(BINARY, b"\x01", fin=False)
    ws.send_frame(CONT, b"\x02\x03", fin=True)
    assert echo_of(ws) == (BINARY, b"\x01\x02\x03")


def test_control_frames_interleaved_in_a_fragmented_message(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"hello ", fin=False)
    ws.send_frame(PING, b"in between")
    ws.send_frame(PONG, b"unsolicited")  # ignored
    ws.send_frame(CONT, b"world", fin=True)
    pong = ws.recv_frame()
    assert (pong.opcode, pong.payload, pong.fin) == (PONG, b"in between", True)
    assert echo_of(ws) == (TEXT, b"hello world")


def test_continuation_without_a_message_is_a_protocol_error(ws: RawWebSocket) -> None:
    ws.send_frame(CONT, b"orphan", fin=True)
    ws.expect_close(1002)


def test_new_message_inside_a_fragmented_one_is_a_protocol_error(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"first", fin=False)
    ws.send_frame(TEXT, b"second", fin=True)
    ws.expect_close(1002)


# -- ping and pong ---------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"p", bytes(range(125))])
def test_ping_is_answered_with_its_payload(ws: RawWebSocket, payload: bytes) -> None:
    ws.send_frame(PING, payload)
    pong = ws.recv_frame()
    assert (pong.opcode, pong.fin, pong.rsv, pong.payload) == (PONG, True, 0, payload)


def test_oversized_control_frame_is_a_protocol_error(ws: RawWebSocket) -> None:
    ws.send_frame(PING, b"x" * 126)
    ws.expect_close(1002)


def test_fragmented_control_frame_is_a_protocol_error(ws: RawWebSocket) -> None:
    ws.send_frame(PING, b"half", fin=False)
    ws.expect_close(1002)


# -- reserved bits and opcodes ---------------------------------------------


@pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3],
                         ids=["rsv1", "rsv2", "rsv3", "all"])
def test_reserved_bits_without_an_extension_are_a_protocol_error(ws: RawWebSocket,
                                                                  rsv: int) -> None:
    ws.send_frame(TEXT, b"reserved", rsv=rsv)
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes_are_a_protocol_error(ws: RawWebSocket, opcode: int) -> None:
    ws.send_frame(opcode, b"what")
    ws.expect_close(1002)


# -- UTF-8 -------------------------------------------------------------------


def test_valid_utf8_split_inside_a_character_across_fragments(ws: RawWebSocket) -> None:
    text = "κόσμε ✓ 𝄞".encode()
    cut = text.index("𝄞".encode()) + 2  # in the middle of a four-byte character
    ws.send_frame(TEXT, text[:cut], fin=False)
    ws.send_frame(CONT, text[cut:], fin=True)
    assert echo_of(ws) == (TEXT, text)


@pytest.mark.parametrize("payload", [b"\xff", b"ok \xc0\xaf", b"\xed\xa0\x80",
                                     b"\xf4\x90\x80\x80", b"cut \xe2\x82"],
                         ids=["ff", "overlong", "surrogate", "above-max", "truncated"])
def test_invalid_utf8_in_a_text_message_closes_with_1007(ws: RawWebSocket,
                                                         payload: bytes) -> None:
    ws.send_frame(TEXT, payload)
    ws.expect_close(1007)


def test_invalid_utf8_split_across_fragments_closes_with_1007(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"fine \xe2", fin=False)
    ws.send_frame(CONT, b"\x28\xa1 not a character", fin=True)
    ws.expect_close(1007)


def test_invalid_utf8_fails_before_the_message_ends(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"bad \xff", fin=False)  # the message never finishes
    ws.expect_close(1007)


def test_message_ending_inside_a_character_closes_with_1007(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"abc", fin=False)
    ws.send_frame(CONT, b"\xf0\x9d", fin=True)
    ws.expect_close(1007)


def test_binary_messages_are_not_checked_for_utf8(ws: RawWebSocket) -> None:
    ws.send_frame(BINARY, b"\xff\xfe\xc0")
    assert echo_of(ws) == (BINARY, b"\xff\xfe\xc0")


# -- closing -----------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4999])
def test_client_close_is_echoed_and_reaches_the_app(server: ServerProcess, events: Path,
                                                    code: int) -> None:
    ws = RawWebSocket.connect(server, f"/echo?close={code}")
    ws.send_frame(CLOSE, close_payload(code, "ciao ✓".encode()))
    echoed = ws.expect_close(code)
    assert echoed.close_reason == "ciao ✓".encode()
    wait_until(lambda: f"/echo disconnect {code} ciao ✓" in file_lines(events),
               what=f"the app's websocket.disconnect with {code}")


def test_empty_close_is_echoed_empty_and_the_app_gets_1005(server: ServerProcess,
                                                           events: Path) -> None:
    ws = RawWebSocket.connect(server, "/wait")
    ws.send_frame(CLOSE, b"")
    received = ws.recv_frame()
    assert (received.opcode, received.payload) == (CLOSE, b"")
    ws.expect_tcp_closed()
    wait_until(lambda: "/wait disconnect 1005 " in file_lines(events),
               what="websocket.disconnect 1005")


@pytest.mark.parametrize("payload", [b"\x03", close_payload(999), close_payload(1004),
                                     close_payload(1005), close_payload(1006),
                                     close_payload(1015), close_payload(1100),
                                     close_payload(2999), close_payload(5000)],
                         ids=["one-byte", "999", "1004", "1005", "1006", "1015", "1100",
                              "2999", "5000"])
def test_invalid_close_payloads_are_a_protocol_error(ws: RawWebSocket, payload: bytes) -> None:
    ws.send_frame(CLOSE, payload)
    ws.expect_close(1002)


def test_close_reason_with_invalid_utf8_closes_with_1007(ws: RawWebSocket) -> None:
    ws.send_frame(CLOSE, close_payload(1000, b"\xff\xfe"))
    ws.expect_close(1007)


def test_close_frame_with_a_long_reason_is_a_protocol_error(ws: RawWebSocket) -> None:
    ws.send_frame(CLOSE, close_payload(1000, b"r" * 124))  # 126 bytes: too long
    ws.expect_close(1002)


def test_nothing_is_answered_after_a_close_frame(ws: RawWebSocket) -> None:
    ws.send(frame(CLOSE, close_payload(1000)) + frame(TEXT, b"after") + frame(PING, b"p"))
    ws.expect_close(1000)  # the close echo and then the end: no echo, no pong


def test_close_in_the_middle_of_a_fragmented_message(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"half", fin=False)
    ws.send_frame(CLOSE, close_payload(1000))
    ws.expect_close(1002)


# -- limits --------------------------------------------------------------------


def test_message_at_the_limit_passes_and_over_it_closes_with_1009(server: ServerProcess,
                                                                  ws: RawWebSocket) -> None:
    ws.send_frame(BINARY, b"x" * MAX_SIZE)
    assert echo_of(ws) == (BINARY, b"x" * MAX_SIZE)
    ws.send_frame(BINARY, b"x" * (MAX_SIZE + 1))
    ws.expect_close(1009)


def test_oversized_frame_is_refused_from_its_header(ws: RawWebSocket) -> None:
    # Only the header of a frame claiming 2**40 bytes: refused without waiting for them.
    ws.send(struct.pack("!BBQ", 0x82, 0xFF, 1 << 40) + b"mask")
    ws.expect_close(1009)


def test_fragmented_message_over_the_limit_closes_with_1009(ws: RawWebSocket) -> None:
    ws.send_frame(TEXT, b"a" * 60_000, fin=False)
    ws.send_frame(CONT, b"a" * 60_000, fin=True)
    ws.expect_close(1009)


# -- compression ----------------------------------------------------------------


def test_permessage_deflate_is_negotiated_and_used_both_ways(server: ServerProcess) -> None:
    ws = RawWebSocket.connect(server, "/echo", deflate=True)
    assert ws.accepted
    answer = ws.headers[b"sec-websocket-extensions"]
    assert answer.startswith(b"permessage-deflate"), answer
    assert b"client_max_window_bits=12" in answer
    deflater = Deflater()
    for text in ["compress me " * 50, "again, with context takeover " * 20, "ünïcode ✓"]:
        ws.send_frame(TEXT, deflater.compress(text.encode()), rsv=RSV1)
        received = ws.recv_data_frame()
        assert (received.opcode, received.rsv, received.fin) == (TEXT, RSV1, True)
        assert deflater.decompress(received.payload) == text.encode()
    # A fragmented compressed message: RSV1 on the first frame only.
    data = deflater.compress(b"fragmented and compressed " * 30)
    ws.send_frame(BINARY, data[:10], fin=False, rsv=RSV1)
    ws.send_frame(CONT, data[10:], fin=True)
    received = ws.recv_data_frame()
    assert deflater.decompress(received.payload) == b"fragmented and compressed " * 30
    # An uncompressed message is allowed too.
    ws.send_frame(TEXT, b"plain")
    assert ws.recv_data_frame().opcode == TEXT
    ws.close()


def test_compressed_message_over_the_limit_after_inflating_closes_with_1009(
        server: ServerProcess) -> None:
    ws = RawWebSocket.connect(server, "/echo", deflate=True)
    bomb = Deflater().compress(b"\x00" * (MAX_SIZE * 5))
    assert len(bomb) < MAX_SIZE
    ws.send_frame(BINARY, bomb, rsv=RSV1)
    ws.expect_close(1009)


def test_rsv2_is_still_a_protocol_error_with_compression(server: ServerProcess) -> None:
    ws = RawWebSocket.connect(server, "/echo", deflate=True)
    ws.send_frame(TEXT, b"x", rsv=RSV2)
    ws.expect_close(1002)


def test_rsv1_on_a_continuation_frame_is_a_protocol_error(server: ServerProcess) -> None:
    # RFC 7692 6.1: only the first frame of a compressed message carries RSV1.
    ws = RawWebSocket.connect(server, "/echo", deflate=True)
    data = Deflater().compress(b"fragmented and compressed " * 30)
    ws.send_frame(TEXT, data[:10], fin=False, rsv=RSV1)
    ws.send_frame(CONT, data[10:], fin=True, rsv=RSV1)
    ws.expect_close(1002)


def test_compressed_control_frame_is_a_protocol_error(server: ServerProcess) -> None:
    ws = RawWebSocket.connect(server, "/echo", deflate=True)
    ws.send_frame(PING, zlib.compress(b"p")[2:-4], rsv=RSV1)
    ws.expect_close(1002)


def test_permessage_deflate_off(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--no-ws-per-message-deflate")
    ws = RawWebSocket.connect(server, "/echo", deflate=True)
    assert ws.accepted
    assert b"sec-websocket-extensions" not in ws.headers
    ws.send_frame(TEXT, Deflater().compress(b"hello"), rsv=RSV1)
    ws.expect_close(1002)


def test_unknown_extensions_are_declined(server: ServerProcess) -> None:
    ws = RawWebSocket.connect(server, "/echo",
                              headers=[("Sec-WebSocket-Extensions", "x-webkit-foo; bar=1")])
    assert ws.accepted
    assert b"sec-websocket-extensions" not in ws.headers
    ws.send_frame(TEXT, b"still fine")
    assert echo_of(ws) == (TEXT, b"still fine")
