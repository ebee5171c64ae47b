"""How the HTTP/1.1 client takes a response head: sliced whole from the bytes received
(and split into fields only when asked), the same bytes as the answer before recognised
at once, a head in pieces put together.  Against a raw-socket server that answers a
script of responses on one kept-alive connection, some of them a byte at a time."""

from __future__ import annotations

import asyncio

import pytest

from client_helpers import RawServer, read_head, run
from qactuar.client import Client, Limits, ProtocolError

PLAIN = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
# The same head and one more field: it begins with PLAIN's head, CRLF and all.
WITH_COOKIE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
               b"Set-Cookie: flavour=oat; Path=/\r\n\r\nok")
REASON = b"HTTP/1.1 201 Made It\r\nX-Odd:   spaced \t\r\nContent-Length: 3\r\n\r\nnew"
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
INTERIM = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + PLAIN
# (answer, sent a byte at a time)
SCRIPT = [(PLAIN, False), (PLAIN, False), (WITH_COOKIE, False), (WITH_COOKIE, False),
          (PLAIN, True), (REASON, True), (REASON, False), (CHUNKED, False), (PLAIN, False),
          (INTERIM, False), (INTERIM, True), (b"\r\n" + PLAIN, False)]


async def scripted(reader, writer) -> None:
    for answer, bytewise in SCRIPT:
        await read_head(reader)
        if bytewise:
            for index in range(len(answer)):
                writer.write(answer[index:index + 1])
                await writer.drain()
                await asyncio.sleep(0)
        else:
            writer.write(answer)
    await reader.read()


def test_heads_whole_repeated_changed_and_in_pieces() -> None:
    async def main() -> tuple[list[tuple], int]:
        async with RawServer(scripted) as server, Client(cookies=False) as client:
            seen = []
            for _ in SCRIPT:
                response = await client.get(f"{server.url}/")
                seen.append((response.status_code, response.reason, response.content,
                             response.headers.get("content-type"),
                             response.headers.get("x-odd"), response.has_cookies,
                             response.cookies, len(response.raw_headers)))
            return seen, server.connections

    seen, connections = run(main())
    plain = (200, "OK", b"ok", "text/plain", None, False, {}, 2)
    cookie = (200, "OK", b"ok", "text/plain", None, True, {"flavour": "oat"}, 3)
    reason = (201, "Made It", b"new", None, "spaced \t", False, {}, 2)
    assert seen == [plain, plain, cookie, cookie, plain, reason, reason,
                    (200, "OK", b"abcde", None, None, False, {}, 1), plain, plain, plain,
                    plain]
    assert connections == 1  # every answer on the one connection: none was refused


@pytest.mark.parametrize("after", [b"HTTP/1.1 2", b"HTTP/1.1 200 OK\r\nX: y"])
def test_a_partial_answer_after_a_complete_one_fails_that_one(after: bytes) -> None:
    # A server that sends the start of another answer behind a complete one: that
    # answer fails (707), and the next request goes out on a new connection.
    async def peer(reader, writer) -> None:
        await read_head(reader)
        writer.write(PLAIN + after)
        await reader.read()

    async def main() -> tuple[ProtocolError, bytes]:
        async with RawServer(peer) as server, Client() as client:
            with pytest.raises(ProtocolError) as caught:
                await client.get(f"{server.url}/")
            return caught.value

    error = run(main())
    assert error.code == 707 and "past its end" in str(error)


def test_a_pipelined_connection_records_its_heads() -> None:
    # Pipelined answers arrive together; one behind a chunked body begins where only
    # the parser knows, so that connection records heads from the parser's callbacks.
    answers = [CHUNKED, WITH_COOKIE, REASON, PLAIN]

    async def peer(reader, writer) -> None:
        for _ in answers:
            await read_head(reader)
        writer.write(b"".join(answers))
        await reader.read()

    async def main() -> list[tuple]:
        limits = Limits(max_connections_per_origin=1, pipelining=4)
        async with RawServer(peer) as server, \
                Client(limits=limits, cookies=False, http2=False) as client:
            responses = await asyncio.gather(*[client.get(f"{server.url}/{index}")
                                               for index in range(len(answers))])
            return [(r.status_code, r.reason, r.content, r.cookies,
                     r.headers.get("x-odd")) for r in responses]

    assert run(main()) == [(200, "OK", b"abcde", {}, None),
                           (200, "OK", b"ok", {"flavour": "oat"}, None),
                           (201, "Made It", b"new", {}, "spaced \t"),
                           (200, "OK", b"ok", {}, None)]
