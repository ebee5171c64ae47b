"""The WebSocket client (qactuar.client.websocket) against Qactuar's WebSocket server and,
for what an ASGI app cannot send (fragments, pings, bad UTF-8, raw compressed frames),
a one-connection raw-socket server written here."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerProcess, _SocketReader, file_lines, wait_until, write_tls_files
from qactuar.client import errors
from qactuar.client.websocket import (
    CLOSE,
    PING,
    PONG,
    Message,
    WebSocketClosed,
    WebSocketRefused,
    connect,
)
from ws_client import BINARY, CONT, TEXT, close_payload, frame

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws-events") / "events.txt"


@pytest.fixture(scope="module")
def ws_server(events_file: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.ws_app:app", "--host", "127.0.0.1", "--port", "0"],
                           env={"TEST_EVENTS_FILE": str(events_file)})
    yield server
    server.stop()


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


# -- a raw one-connection WebSocket server ----------------------------------------------


class RawPeer:
    """Accepts one connection, answers the handshake (101, or `answer` verbatim), then runs
    `script(conn, reader)` on a thread; what the script returns is `result`."""

    def __init__(self, script: Callable[[socket.socket, _SocketReader], Any],
                 deflate: bool = False, answer: bytes | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.script = script
        self.deflate = deflate
        self.answer = answer
        self.request_head = b""
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/raw"

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)
                reader = _SocketReader(conn)
                lines = []
                while (line := reader.read_line()) != b"":
                    lines.append(line)
                self.request_head = b"\r\n".join(lines)
                if self.answer is not None:
                    conn.sendall(self.answer)
                else:
                    key = next(line.split(b":", 1)[1].strip() for line in lines
                               if line.lower().startswith(b"sec-websocket-key:"))
                    accept = base64.b64encode(hashlib.sha1(key + ACCEPT_GUID).digest())
                    extension = (b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                 if self.deflate else b"")
                    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                                 b"\r\n" + extension + b"\r\n")
                self.result = self.script(conn, reader)
        except BaseException as error:  # reported by finish()
            self.error = error
        finally:
            self.listener.close()

    def finish(self) -> Any:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the raw peer's script did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def read_client_frame(reader: _SocketReader) -> tuple[bool, int, int, bytes]:
    """(fin, rsv bits, opcode, unmasked payload) of the next client frame; a client masks."""
    first, second = reader.read_exact(2)
    assert second & 0x80, "a client must mask its frames"
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", reader.read_exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", reader.read_exact(8))[0]
    key = reader.read_exact(4)
    payload = bytes(byte ^ key[i % 4] for i, byte in enumerate(reader.read_exact(length)))
    return bool(first & 0x80), first & 0x70, first & 0x0F, payload


def server_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    return frame(opcode, payload, fin=fin, rsv=rsv, masked=False)


def finish_close(conn: socket.socket, reader: _SocketReader) -> tuple[int, bytes]:
    """Read frames until the client's close frame; answer it and close; (code, reason)."""
    while True:
        _, _, opcode, payload = read_client_frame(reader)
        if opcode == CLOSE:
            conn.sendall(server_frame(CLOSE, payload))
            return struct.unpack("!H", payload[:2])[0], payload[2:]


# -- against Qactuar's WebSocket server --------------------------------------------------


def test_text_and_binary_messages_echo(ws_server: ServerProcess) -> None:
    async def main() -> list[Any]:
        async with connect(ws_url(ws_server, "/echo")) as ws:
            await ws.send("héllo")
            text = await ws.recv()
            await ws.send(b"\x00\xffbinary")
            binary = await ws.recv()
            await ws.send(bytearray(b"ba"))
            from_bytearray = await ws.recv()
            return [text, binary, from_bytearray, ws.extensions]

    assert run(main()) == ["héllo", b"\x00\xffbinary", b"ba", ["permessage-deflate"]]


def test_fragmented_messages_are_sent_as_one(ws_server: ServerProcess) -> None:
    async def parts() -> Any:
        for part in (b"one ", b"two ", b"three"):
            yield part

    async def main() -> list[Any]:
        async with connect(ws_url(ws_server, "/echo")) as ws:
            await ws.send(["frag", "men", "ted"])
            text = await ws.recv()
            await ws.send(parts())
            binary = await ws.recv()
            await ws.send(["single"])
            single = await ws.recv()
            with pytest.raises(TypeError, match="all be str or all bytes"):
                await ws.send(iter(["text", b"bytes"]))  # refused before any frame is sent
            await ws.send("still usable")
            usable = await ws.recv()
            with pytest.raises(TypeError):
                await ws.send(iter(["sent", "sent", 3]))  # refused mid-message
            with pytest.raises(WebSocketClosed):
                await ws.recv()
            return [text, binary, single, usable, ws.close_code]

    # A message that cannot be completed fails the connection (1011, RFC 6455 7.4.1):
    # the peer must not take its first fragments for a whole message.
    assert run(main()) == ["fragmented", b"one two three", "single", "still usable", 1011]


def test_large_messages_both_ways_with_and_without_compression(ws_server: ServerProcess) -> None:
    big_text = "qactuar " * 50_000  # 400 kB, sent in many TCP writes
    big_binary = bytes(range(256)) * 2000

    async def main(compression: str | None) -> list[Any]:
        async with connect(ws_url(ws_server, "/echo"), compression=compression) as ws:
            await ws.send(big_text)
            text = await ws.recv()
            await ws.send(big_binary)
            return [ws.extensions, text == big_text, await ws.recv() == big_binary]

    assert run(main("deflate")) == [["permessage-deflate"], True, True]
    assert run(main(None)) == [[], True, True]


def test_ping_waits_for_the_pong(ws_server: ServerProcess) -> None:
    async def main() -> list[Any]:
        async with connect(ws_url(ws_server, "/echo")) as ws:
            first = await ws.ping()
            second = await ws.ping(b"payload")
            await ws.send("after pings")
            # The pongs are queued as control messages; recv() skips them.
            reply = await ws.recv()
            return [first, second, reply]

    first, second, reply = run(main())
    assert isinstance(first, float) and first > 0  # perf_counter: never a 0 step
    assert isinstance(second, float) and second >= 0
    assert reply == "after pings"


def test_client_close_code_and_reason_reach_the_app(ws_server: ServerProcess,
                                                     events_file: Path) -> None:
    async def main() -> list[Any]:
        ws = await connect(ws_url(ws_server, "/echo?who=closer"))
        await ws.send("x")
        await ws.recv()
        await ws.close(4002, "done here")
        await ws.close()  # a second close is harmless
        with pytest.raises(WebSocketClosed) as closed:
            await ws.send("too late")
        return [ws.closed, ws.close_code, ws.close_reason, closed.value.code]

    assert run(main()) == [True, 4002, "done here", 710]
    wait_until(lambda: "/echo disconnect 4002 done here" in file_lines(events_file),
               what="the app's disconnect event")


def test_server_close_code_is_reported(ws_server: ServerProcess) -> None:
    async def main() -> list[Any]:
        async with connect(ws_url(ws_server, "/close?code=4001&reason=bye")) as ws:
            with pytest.raises(WebSocketClosed) as closed:
                await ws.recv()
            return [closed.value.close_code, closed.value.close_reason, closed.value.code,
                    ws.close_code, ws.close_reason]

    assert run(main()) == [4001, "bye", 710, 4001, "bye"]


def test_the_close_frame_as_a_control_message_and_iteration_end(
        ws_server: ServerProcess) -> None:
    async def main() -> list[Any]:
        async with connect(ws_url(ws_server, "/close?code=1000&reason=fine")) as ws:
            message = await ws.recv_message(control=True)
        async with connect(ws_url(ws_server, "/close?code=1001")) as ws:
            received = [item async for item in ws]
        return [message, received, ws.close_code]

    assert run(main()) == [Message(CLOSE, "fine"), [], 1001]


def test_close_codes_an_endpoint_may_not_send_are_refused(ws_server: ServerProcess) -> None:
    async def main() -> None:
        async with connect(ws_url(ws_server, "/echo")) as ws:
            for code in (999, 1005, 1006, 1015, 5000):
                with pytest.raises(ValueError, match="not a close code"):
                    await ws.close(code)
            with pytest.raises(ValueError, match="123 bytes"):
                await ws.close(1000, "x" * 124)
            await ws.send("still open")
            assert await ws.recv() == "still open"

    run(main())


def test_subprotocols_and_extra_headers(ws_server: ServerProcess) -> None:
    async def main() -> list[Any]:
        async with connect(ws_url(ws_server, "/subprotocol"), subprotocols=["chat", "json"]) as ws:
            offered = await ws.recv()
            chosen = ws.subprotocol
            extra = dict(ws.headers).get("x-extra")
        async with connect(ws_url(ws_server, "/scope"),
                           headers={"X-Token": "abc", "Cookie": "a=1"}) as ws:
            scope = json.loads(await ws.recv())
        return [offered, chosen, extra, scope["headers"]]

    offered, chosen, extra, headers = run(main())
    assert (offered, chosen, extra) == ('["chat", "json"]', "json", "yes")
    assert ["x-token", "abc"] in headers and ["cookie", "a=1"] in headers


def test_handshake_headers_of_its_own_and_injection_are_refused(
        ws_server: ServerProcess) -> None:
    with pytest.raises(ValueError, match="set by the WebSocket handshake"):
        connect(ws_url(ws_server, "/echo"), headers={"Sec-WebSocket-Key": "x"})
    with pytest.raises(ValueError, match="invalid header field"):
        connect(ws_url(ws_server, "/echo"), headers={"X-A": "1\r\nInjected: yes"})
    with pytest.raises(ValueError, match="ws:// or wss://"):
        connect("http://127.0.0.1/echo")


def test_refused_handshake_carries_the_http_answer(ws_server: ServerProcess) -> None:
    async def main() -> WebSocketRefused:
        with pytest.raises(WebSocketRefused) as refused:
            await connect(ws_url(ws_server, "/deny"))
        return refused.value

    refused = run(main())
    assert (refused.code, refused.status, refused.body) == (716, 401, b"no entry")
    assert ("x-why", "token") in refused.headers
    assert isinstance(refused, errors.ProtocolSwitchError)


# -- connection failures and their 7xx codes ---------------------------------------------


def test_connection_refused_is_714() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused

        async def main() -> errors.ClientError:
            with pytest.raises(errors.ClientError) as failed:
                await connect(f"ws://127.0.0.1:{port}/x")
            return failed.value

        assert run(main()).code == 714


def test_unresolvable_host_is_704() -> None:
    async def main() -> errors.ClientError:
        with pytest.raises(errors.ClientError) as failed:
            await connect("ws://no-such-host.invalid/x", open_timeout=5)
        return failed.value

    assert run(main()).code == 704


def test_silent_server_is_a_702_timeout() -> None:
    stop = threading.Event()
    peer = RawPeer(lambda conn, reader: stop.wait(10), answer=b"")

    async def main() -> errors.ClientError:
        with pytest.raises(errors.ClientError) as failed:
            await connect(peer.url, open_timeout=0.3)
        return failed.value

    try:
        assert run(main()).code == 702
    finally:
        stop.set()
        peer.finish()


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH\r\n\r\n",  # not HTTP
    b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Big: " + b"b" * 20_000 + b"\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Many: 1\r\n" * 500 + b"\r\n",
])
def test_a_non_http_answer_is_a_handshake_error(answer: bytes) -> None:
    peer = RawPeer(lambda conn, reader: None, answer=answer)

    async def main() -> errors.ClientError:
        with pytest.raises(errors.ClientError) as failed:
            await connect(peer.url)
        return failed.value

    assert run(main()).code == 715  # as for an HTTP answer with a bad status line
    peer.finish()


def test_a_wrong_accept_key_is_716() -> None:
    answer = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n")
    peer = RawPeer(lambda conn, reader: None, answer=answer)

    async def main() -> errors.ClientError:
        with pytest.raises(errors.ClientError) as failed:
            await connect(peer.url)
        return failed.value

    failure = run(main())
    assert failure.code == 716 and "Sec-WebSocket-Accept" in str(failure)
    peer.finish()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    paths = write_tls_files(tmp_path_factory.mktemp("ws-tls"))
    return paths["cert"], paths["key"], paths["ca"]


def test_wss_verifies_the_certificate(tls_files: tuple[Path, Path, Path]) -> None:
    cert, key, ca = tls_files
    server = ServerProcess(["apps.ws_app:app", "--host", "127.0.0.1", "--port", "0",
                            "--ssl-cert-path", str(cert), "--ssl-key-path", str(key)])
    url = f"wss://127.0.0.1:{server.port}/echo"

    async def main() -> list[Any]:
        with pytest.raises(errors.ClientError) as untrusted:
            await connect(url)
        async with connect(url, verify=str(ca)) as ws:
            await ws.send("over TLS")
            trusted = await ws.recv()
        async with connect(url, verify=False) as ws:
            await ws.send("unverified")
            unverified = await ws.recv()
        return [untrusted.value.code, trusted, unverified]

    try:
        assert run(main()) == [713, "over TLS", "unverified"]
    finally:
        server.stop()


# -- against the raw peer: what an ASGI app cannot send ---------------------------------


def test_fragmented_server_messages_are_reassembled() -> None:
    def script(conn: socket.socket, reader: _SocketReader) -> Any:
        conn.sendall(server_frame(TEXT, "hé".encode()[:2], fin=False)  # split inside "é"
                     + server_frame(PING, b"in-between")  # a control frame mid-message
                     + server_frame(CONT, "hé".encode()[2:] + b"llo", fin=False)
                     + server_frame(CONT, b" world", fin=True)
                     + server_frame(BINARY, b"\x01", fin=False)
                     + server_frame(CONT, b"\x02", fin=True))
        _, _, opcode, payload = read_client_frame(reader)  # the automatic pong
        return (opcode, payload), finish_close(conn, reader)

    peer = RawPeer(script)

    async def main() -> list[Any]:
        async with connect(peer.url, compression=None) as ws:
            return [await ws.recv(), await ws.recv()]

    assert run(main()) == ["héllo world", b"\x01\x02"]
    pong, close = peer.finish()
    assert pong == (PONG, b"in-between")
    assert close == (1000, b"")


def test_server_pings_are_answered_and_visible_as_control_messages() -> None:
    def script(conn: socket.socket, reader: _SocketReader) -> Any:
        conn.sendall(server_frame(PING, b"are you there") + server_frame(PONG, b"unsolicited")
                     + server_frame(TEXT, b"data"))
        answer = read_client_frame(reader)
        return answer, finish_close(conn, reader)

    peer = RawPeer(script)

    async def main() -> list[Message]:
        async with connect(peer.url, compression=None) as ws:
            return [await ws.recv_message(control=True) for _ in range(3)]

    assert run(main()) == [Message(PING, b"are you there"), Message(PONG, b"unsolicited"),
                           Message(1, "data")]
    answer, _ = peer.finish()
    assert answer == (True, 0, PONG, b"are you there")


def test_invalid_utf8_fails_the_connection_with_1007() -> None:
    def script(conn: socket.socket, reader: _SocketReader) -> Any:
        conn.sendall(server_frame(TEXT, b"\xff\xfe"))
        return finish_close(conn, reader)

    peer = RawPeer(script)

    async def main() -> int | None:
        async with connect(peer.url) as ws:
            with pytest.raises(WebSocketClosed):
                await ws.recv()
            return ws.close_code

    assert run(main()) == 1007
    code, _ = peer.finish()
    assert code == 1007


def test_a_message_over_max_size_fails_the_connection_with_1009() -> None:
    def script(conn: socket.socket, reader: _SocketReader) -> Any:
        conn.sendall(server_frame(BINARY, b"x" * 600, fin=False)
                     + server_frame(CONT, b"x" * 600))
        return finish_close(conn, reader)

    peer = RawPeer(script)

    async def main() -> int | None:
        async with connect(peer.url, max_size=1000) as ws:
            with pytest.raises(WebSocketClosed):
                await ws.recv()
            return ws.close_code

    assert run(main()) == 1009
    code, _ = peer.finish()
    assert code == 1009


def test_permessage_deflate_compresses_on_the_wire() -> None:
    text = "compress me " * 200

    def script(conn: socket.socket, reader: _SocketReader) -> Any:
        _, rsv, opcode, payload = read_client_frame(reader)
        inflated = zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")
        deflater = zlib.compressobj(wbits=-15)
        reply = deflater.compress(b"deflated reply") + deflater.flush(zlib.Z_SYNC_FLUSH)
        conn.sendall(server_frame(TEXT, reply[:-4], rsv=0x40))
        return (rsv, opcode, len(payload), inflated), finish_close(conn, reader)

    peer = RawPeer(script, deflate=True)

    async def main() -> list[Any]:
        async with connect(peer.url) as ws:
            await ws.send(text)
            return [ws.extensions, await ws.recv()]

    assert run(main()) == [["permessage-deflate"], "deflated reply"]
    (rsv, opcode, wire_size, inflated), close = peer.finish()
    assert b"permessage-deflate" in peer.request_head
    assert (rsv, opcode) == (0x40, TEXT)
    assert inflated == text.encode() and wire_size < len(text) // 10
    assert close == (1000, b"")


def test_abrupt_end_without_close_frame_is_1006() -> None:
    peer = RawPeer(lambda conn, reader: conn.sendall(server_frame(TEXT, b"last words")))

    async def main() -> list[Any]:
        async with connect(peer.url) as ws:
            first = await ws.recv()
            with pytest.raises(WebSocketClosed) as closed:
                await ws.recv()
            return [first, closed.value.close_code, ws.close_code]

    assert run(main()) == ["last words", 1006, 1006]
    peer.finish()


def test_close_frame_payload_is_well_formed() -> None:
    def script(conn: socket.socket, reader: _SocketReader) -> Any:
        conn.sendall(server_frame(CLOSE, close_payload(4321, b"server says bye")))
        return read_client_frame(reader)

    peer = RawPeer(script)

    async def main() -> list[Any]:
        async with connect(peer.url) as ws:
            with pytest.raises(WebSocketClosed) as closed:
                await ws.recv()
            return [closed.value.close_code, closed.value.close_reason]

    assert run(main()) == [4321, "server says bye"]
    _, _, opcode, payload = peer.finish()
    # The client echoes the close code (RFC 6455 5.5.1).
    assert (opcode, payload[:2]) == (CLOSE, struct.pack("!H", 4321))


def test_a_peer_that_never_closes_is_dropped_after_the_close_timeout() -> None:
    stop = threading.Event()

    def script(conn: socket.socket, reader: _SocketReader) -> Any:
        conn.sendall(server_frame(TEXT, b"\xff"))
        answer = read_client_frame(reader)  # the client's close (1007)
        stop.wait(10)  # never echo it, never close
        return answer

    peer = RawPeer(script)

    async def main() -> int | None:
        ws = await connect(peer.url, close_timeout=0.3)
        with pytest.raises(WebSocketClosed):
            await ws.recv()
        await ws.close()  # already closed: returns at once
        return ws.close_code

    try:
        # Well before the peer gives up (10 s): only the close timeout can end it.
        assert asyncio.run(asyncio.wait_for(main(), 5)) == 1007
    finally:
        stop.set()
    _, _, opcode, payload = peer.finish()
    assert (opcode, payload[:2]) == (CLOSE, struct.pack("!H", 1007))


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 abc\x1b[2J\r\n\r\n",  # a bad status line carrying a terminal escape
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: \x1b[2J\r\n\r\n",
])
def test_the_servers_words_are_escaped_in_errors(answer: bytes) -> None:
    peer = RawPeer(lambda conn, reader: None, answer=answer)

    async def main() -> str:
        with pytest.raises(errors.ClientError) as failed:
            await connect(peer.url)
        return str(failed.value)

    message = run(main())
    peer.finish()
    assert "\x1b" not in message and "\\x1b" in message
