"""A response body taken from a file: the `http.response.pathsend` and
`http.response.zerocopysend` ASGI extensions.

`HTTPStream.send` hands these two messages here.  The file's bytes go out one
of two ways:

- zero-copy: where the sink offers its socket (`ResponseSink.file_socket`:
  HTTP/1.1 over plain TCP, a body framed by Content-Length), `os.sendfile`
  moves them from the page cache to the socket without passing through Python;
- copied: otherwise (TLS, HTTP/2, a chunked body, a socket the kernel will not
  sendfile to), the file is read in parts that go through the stream's own
  `http.response.body` path, with its checks and back-pressure.

Either way the stream's checks hold: the phase, Content-Length against what is
sent, the client's disconnection (`ClientDisconnected`).  This module never
frames bytes for the wire; the sink does.
"""

from __future__ import annotations

import asyncio
import os
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qactuar.asgi.http_stream import HTTPStream

# The extensions a protocol that carries HTTPStream advertises in scope["extensions"].
FILE_EXTENSIONS = ("http.response.pathsend", "http.response.zerocopysend")
# Bytes per read on the copying path: large enough for few writes, small enough
# that a slow client's back-pressure is felt between parts.
COPY_PART = 256 * 1024


def advertise(extensions: dict[str, Any]) -> dict[str, Any]:
    """`extensions` with the two file-body extensions added (each an empty dict, per the spec)."""
    for name in FILE_EXTENSIONS:
        extensions[name] = {}
    return extensions


def open_path(message: dict[str, Any]) -> tuple[int, int]:
    """(fd, size) of the regular file an `http.response.pathsend` message names.

    The app's mistakes (a relative path, a missing or unreadable file, a
    directory) raise RuntimeError: nothing is on the wire yet, so the server
    answers 500 for the app and logs this error."""
    path = message.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise RuntimeError(f"ASGI app sent http.response.pathsend with a path that is not "
                           f"an absolute path: {path!r}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise RuntimeError(f"ASGI app sent http.response.pathsend of a file that cannot be "
                           f"opened: {path!r} ({error.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RuntimeError(f"ASGI app sent http.response.pathsend of something that is not "
                           f"a regular file: {path!r}")
    return fd, info.st_size


def zero_copy_span(message: dict[str, Any]) -> tuple[int, int, int, bool]:
    """(fd, offset, count, more_body) of an `http.response.zerocopysend` message.

    No offset: from the file's current position.  No count: to the end of the
    file.  (The app keeps the file open; the server never closes it.)"""
    file = message.get("file")
    try:
        fd = file if type(file) is int else file.fileno()  # type: ignore[union-attr]
        if type(fd) is not int:
            raise TypeError
        size = os.fstat(fd).st_size
        offset = message.get("offset")
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
    except (AttributeError, TypeError, ValueError, OSError):
        raise RuntimeError(f"ASGI app sent http.response.zerocopysend without a usable file: "
                           f"{file!r}") from None
    count = message.get("count")
    if count is None:
        count = max(size - offset, 0)
    more = message.get("more_body", False)
    if type(offset) is not int or offset < 0 or type(count) is not int or count < 0:
        raise RuntimeError(f"ASGI app sent http.response.zerocopysend with an invalid offset "
                           f"or count: {offset!r}, {count!r}")
    return fd, offset, count, bool(more)


async def send_span(stream: HTTPStream, fd: int, offset: int, count: int, more: bool) -> None:
    """Send `count` bytes of `fd` from `offset` as the stream's next body part(s)."""
    if count and not stream.sink.writing_paused:
        socket_fd = stream.sink.file_socket()
        if socket_fd >= 0:
            sent = await _sendfile(stream, socket_fd, fd, offset, count)
            offset += sent
            count -= sent
    while count > 0:
        part = os.pread(fd, min(count, COPY_PART), offset)
        if not part:
            break  # the file is shorter than said: the length check below reports it
        offset += len(part)
        count -= len(part)
        await stream.send({"type": "http.response.body", "body": part, "more_body": True})
        # Let the loop run once between parts: HTTP/2 frames a part at once but writes
        # the frames on the loop's next turn, so only then does the transport's
        # back-pressure show in `send`.  Without this, a client with large windows
        # had the whole file read and framed in memory in one go, and the
        # connection's other streams waited behind it.
        await asyncio.sleep(0)
    await stream.send({"type": "http.response.body", "body": b"", "more_body": more})


async def _sendfile(stream: HTTPStream, socket_fd: int, fd: int, offset: int,
                    count: int) -> int:
    """Move up to `count` bytes with os.sendfile; the bytes it sent (counted by the stream).

    The socket belongs to the transport, so it is never added to the loop:
    writability is awaited on a duplicate of its descriptor, and only once
    the transport's own buffer (the head) has gone out."""
    sink = stream.sink
    loop: asyncio.AbstractEventLoop = stream._host.loop
    sent_total = 0
    waiting_fd = -1
    try:
        while count > 0 and not stream.disconnected:
            sent = -1
            if sink.write_buffer_size() == 0:
                try:
                    sent = os.sendfile(socket_fd, fd, offset, count)
                except BlockingIOError:
                    sent = -1
                except (BrokenPipeError, ConnectionError):
                    # The transport may not have seen it yet (its reading can be
                    # paused): close it, so the connection ends now, not at shutdown.
                    sink.abort()
                    stream.client_gone()
                    break
                except OSError:
                    break  # not a file sendfile takes: the copying path sends the rest
                if sent == 0:
                    break  # end of file before `count`: the length check reports it
            if sent > 0:
                offset += sent
                count -= sent
                sent_total += sent
                stream.count_sent(sent)
                continue
            if waiting_fd < 0:
                waiting_fd = os.dup(socket_fd)
            await _writable(stream, loop, waiting_fd)
    finally:
        if waiting_fd >= 0:
            os.close(waiting_fd)
    return sent_total


async def _writable(stream: HTTPStream, loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Wait until `fd` is writable, or the stream ends (the client went)."""
    waiter = loop.create_future()
    loop.add_writer(fd, _wake, waiter)
    stream.add_waiter(waiter)  # client_gone() wakes it
    try:
        await waiter
    finally:
        loop.remove_writer(fd)
        stream.remove_waiter(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
