# cython: annotation_typing=False
"""One HTTP/1.1 connection of a load run: writes pre-built requests, frames responses.

`H1Connection` is a bare asyncio protocol.  It writes the run's request bytes
(several at once when pipelining) and scans what comes back only as far as
framing needs: the status code, Content-Length or chunked coding, and
`Connection: close`.  A response head seen before is not parsed again (a
small cache keyed by the head's bytes: servers repeat themselves, and a Date
that changes once a second costs one parse a second).  It never builds a
response object.  What to send next and where results go is the run's job
(`runner.Run`); this module knows only the wire.
"""

from __future__ import annotations

from collections import deque
from time import monotonic_ns
from typing import Any

# Body framing of a response head.
LENGTH = 0  # Content-Length (0 included)
CHUNKED = 1
UNTIL_CLOSE = 2
NO_BODY = 3  # 1xx, 204, 304, or a HEAD request's answer

# Parse states of the connection.
HEAD = 0
BODY = 1
CHUNK_SIZE = 2
CHUNK_DATA = 3
CHUNK_END = 4  # the CRLF after a chunk's data
TRAILERS = 5
CLOSE_BODY = 6

MAX_HEAD = 65536
MAX_CHUNK_LINE = 1024
MAX_CHUNK_DIGITS = 15
MAX_LENGTH_DIGITS = 18
_HEADS: dict[bytes, tuple[int, int, int, bool]] = {}
_HEADS_LIMIT = 256


class ResponseError(Exception):
    """The server's bytes are not an HTTP/1.1 response (a protocol error)."""


def parse_head(head: bytes) -> tuple[int, int, int, bool]:
    """(status, content length, framing, connection closes) of a response head
    (status line through the blank line); ResponseError when it is not one."""
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0]
    if (len(status_line) < 12 or not status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 "))
            or not status_line[9:12].isdigit()
            or (len(status_line) > 12 and status_line[12:13] != b" ")):
        raise ResponseError(f"bad status line {status_line[:64]!r}")
    status = int(status_line[9:12])
    length = -1
    chunked = False
    close = status_line.startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise ResponseError(f"bad header line {line[:64]!r}")
        name = name.lower()
        value = value.strip()
        if name == b"content-length":
            if not value.isdigit() or (length >= 0 and int(value) != length):
                raise ResponseError(f"bad content-length {value[:32]!r}")
            if len(value) > MAX_LENGTH_DIGITS:  # past 10**18: no body is that big
                raise ResponseError(f"content-length too large {value[:32]!r}")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = [token.strip() for token in value.lower().split(b",")]
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens:
                close = False
    if status < 200 or status in (204, 304):
        return status, 0, NO_BODY, close
    if chunked:
        return status, 0, CHUNKED, close
    if length >= 0:
        return status, length, LENGTH, close
    return status, 0, UNTIL_CLOSE, True


class H1Connection:
    """An HTTP/1.1 connection that sends what `run.take()` allows, up to `depth` at once."""

    def __init__(self, run: Any, request: bytes, depth: int, head_only: bool) -> None:
        self.run = run
        self.stats = run.stats
        self.request = request
        self.depth = depth
        self.head_only = head_only
        self.transport: Any = None
        self.sent: deque[int] = deque()  # start (due) times of the requests in flight
        self.buffer = b""
        self.state = HEAD
        self.left = 0  # body or chunk bytes still to come
        self.status = 0
        self.head_bytes = 0
        self.body_bytes = 0
        self.close_after = False
        self.connect_started_ns = monotonic_ns()
        self.connected_ns = 0
        self.first_byte = True
        self.activity_ns = 0
        self.closed = False
        self.answered = 0
        # the last response head seen and what it says: most responses repeat it exactly,
        # so it is matched in place (no slice, no hash) before the head cache is asked
        self.last_head = b""
        self.last_status = 0
        self.last_length = 0
        self.last_framing = LENGTH
        self.last_close = False

    # asyncio protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        now = monotonic_ns()
        self.connected_ns = self.activity_ns = now
        self.run.connected(self, now - self.connect_started_ns)
        self.fill(now)

    def data_received(self, data: bytes) -> None:
        now = monotonic_ns()
        self.activity_ns = now
        if self.first_byte:
            self.first_byte = False
            self.run.first_byte(now - self.connect_started_ns)
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        try:
            finished = self.scan(data, now)
        except ResponseError:
            self.fail("protocol", now)
            return
        if finished and not self.closed:
            if self.close_after:
                self.fail("reset", now)  # the server closes: what is in flight is lost
            else:
                self.fill(now)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        now = monotonic_ns()
        if self.state == CLOSE_BODY and self.sent:
            self.finish(now)
        self.fail("reset", now)

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    # sending

    def fill(self, now: int) -> None:
        """Send as many requests as the run allows and the depth leaves room for."""
        run = self.run
        count = 0
        room = self.depth - len(self.sent)
        while count < room:
            start = run.take(now)
            if start < 0:
                break
            self.sent.append(start)
            count += 1
        if count == 1:
            self.transport.write(self.request)
        elif count:
            self.transport.write(self.request * count)
        if count < room:
            run.has_room(self)

    def send_one(self, start: int) -> None:
        """Send one request due at `start` (the open model's scheduler)."""
        self.sent.append(start)
        self.transport.write(self.request)

    def room(self) -> int:
        return 0 if self.closed or self.close_after else self.depth - len(self.sent)

    # receiving

    def scan(self, data: bytes, now: int) -> int:
        """Frame the responses in `data`; the number finished."""
        finished = 0
        position = 0
        size = len(data)
        while position < size:
            state = self.state
            if state == HEAD:
                if self.last_head and data.startswith(self.last_head, position):
                    head_size = len(self.last_head)
                else:
                    end = data.find(b"\r\n\r\n", position)
                    if end < 0:
                        if size - position > MAX_HEAD:
                            raise ResponseError("response head too large")
                        self.buffer = data[position:]
                        return finished
                    head = data[position:end + 4]
                    info = _HEADS.get(head)
                    if info is None:
                        info = parse_head(head)
                        if len(_HEADS) >= _HEADS_LIMIT:
                            _HEADS.clear()
                        _HEADS[head] = info
                    self.last_head = head
                    self.last_status, self.last_length, self.last_framing, \
                        self.last_close = info
                    head_size = end + 4 - position
                position += head_size
                status = self.last_status
                length = self.last_length
                framing = self.last_framing
                close = self.last_close
                if not self.sent:
                    raise ResponseError("a response nobody asked for")
                if status < 200:
                    continue  # an interim response: the real one follows
                self.status = status
                self.head_bytes = head_size
                self.body_bytes = 0
                self.close_after = close
                if framing == NO_BODY or self.head_only:
                    self.finish(now)
                    finished += 1
                elif framing == LENGTH:
                    if length <= size - position:
                        position += length
                        self.body_bytes = length
                        self.finish(now)
                        finished += 1
                    else:
                        self.body_bytes = size - position
                        self.left = length - (size - position)
                        self.state = BODY
                        return finished
                elif framing == CHUNKED:
                    self.state = CHUNK_SIZE
                else:
                    self.body_bytes = size - position
                    self.state = CLOSE_BODY
                    return finished
            elif state == BODY:
                take = min(self.left, size - position)
                position += take
                self.body_bytes += take
                self.left -= take
                if self.left == 0:
                    self.state = HEAD
                    self.finish(now)
                    finished += 1
            elif state in (CHUNK_SIZE, TRAILERS):
                end = data.find(b"\r\n", position)
                if end < 0:
                    if size - position > MAX_CHUNK_LINE:
                        raise ResponseError("chunk size line too long")
                    self.buffer = data[position:]
                    return finished
                line = data[position:end]
                position = end + 2
                self.head_bytes += len(line) + 2
                if state == TRAILERS:
                    if not line:
                        self.state = HEAD
                        self.finish(now)
                        finished += 1
                    continue
                digits = line.partition(b";")[0].strip()
                if len(digits) > MAX_CHUNK_DIGITS:  # past 2**60: no chunk is that big
                    raise ResponseError(f"chunk size too large {digits[:32]!r}")
                try:
                    chunk = int(digits, 16)
                except ValueError:
                    raise ResponseError(f"bad chunk size {digits[:32]!r}") from None
                if chunk < 0:
                    raise ResponseError("negative chunk size")
                if chunk == 0:
                    self.state = TRAILERS
                else:
                    self.left = chunk
                    self.state = CHUNK_DATA
            elif state == CHUNK_DATA:
                take = min(self.left, size - position)
                position += take
                self.body_bytes += take
                self.left -= take
                if self.left == 0:
                    self.state = CHUNK_END
            elif state == CHUNK_END:
                if size - position < 2:
                    self.buffer = data[position:]
                    return finished
                if data[position:position + 2] != b"\r\n":
                    raise ResponseError("chunk data not followed by CRLF")
                position += 2
                self.head_bytes += 2
                self.state = CHUNK_SIZE
            else:  # CLOSE_BODY: everything until the server closes
                self.body_bytes += size - position
                return finished
        return finished

    def finish(self, now: int) -> None:
        start = self.sent.popleft()
        self.answered += 1
        self.run.answered(start, now, self.status, self.head_bytes, self.body_bytes)

    def fail(self, kind: str, now: int) -> None:
        """Count what is in flight as errored (`kind`), close, and let the run reconnect."""
        if self.closed:
            return
        self.closed = True
        run = self.run
        while self.sent:
            run.errored(self.sent.popleft(), now, kind)
        if self.transport is not None:
            self.transport.abort()
        run.lost(self)

    def timed_out(self, now: int, timeout_ns: int) -> bool:
        """Fail the connection when requests wait and nothing moved for `timeout_ns`."""
        if self.sent and not self.closed and now - self.activity_ns > timeout_ns:
            self.fail("timeout", now)
            return True
        return False
