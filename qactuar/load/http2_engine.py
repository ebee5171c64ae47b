"""One HTTP/2 connection of a load run: pre-encoded HEADERS, a minimal frame reader.

`H2Connection` writes the connection preface with its SETTINGS (no server push,
the largest stream window) and a connection WINDOW_UPDATE once; each request is
then one HEADERS frame whose HPACK block was encoded once for the run (static
table and literals only, so only the stream id changes), plus DATA frames for a
body, as far as the server's flow-control windows allow (new streams wait
while a body is unsent).  Reading, it walks frame headers; only HEADERS blocks go through an
HPACK decoder (the server's dynamic table must be followed to read `:status`),
DATA is counted and given back to the connection window in large steps,
SETTINGS and PING are acknowledged, RST_STREAM and GOAWAY fail the streams they
name.  No `h2` state machine, no event objects.  What to send and where results
go is the run's job (`runner.Run`).
"""

from __future__ import annotations

from collections import deque
from time import monotonic_ns
from typing import Any

from hpack import HPACKError

from qactuar.protocols.hpack_codec import BlockCachingDecoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
MAX_WINDOW = (1 << 31) - 1
WINDOW_REFILL = 1 << 30  # give DATA bytes back to the connection window in steps this big
MAX_FRAME = 16384
LAST_STREAM_ID = (1 << 31) - 1


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (len(payload).to_bytes(3, "big") + bytes((kind, flags))
            + stream_id.to_bytes(4, "big") + payload)


# Our SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 2**31-1; then the connection window
# raised to 2**31-1 as well: a load tool reads everything at once.
OPENING = (PREFACE
           + frame(SETTINGS, 0, 0, (2).to_bytes(2, "big") + (0).to_bytes(4, "big")
                   + (4).to_bytes(2, "big") + MAX_WINDOW.to_bytes(4, "big"))
           + frame(WINDOW_UPDATE, 0, 0, (MAX_WINDOW - 65535).to_bytes(4, "big")))
SETTINGS_ACK = frame(SETTINGS, ACK, 0, b"")


class FrameError(Exception):
    """The server broke HTTP/2 framing (a protocol error for the whole connection)."""


class H2Connection:
    """An HTTP/2 connection that keeps up to `streams` requests in flight."""

    def __init__(self, run: Any, header_block: bytes, body: bytes, streams: int) -> None:
        self.run = run
        self.body = body
        self.streams_wanted = streams
        self.limit = streams  # lowered by the server's MAX_CONCURRENT_STREAMS
        self.header_flags = END_HEADERS | (0 if body else END_STREAM)
        # A HEADERS frame is these bytes, then the stream id, then the block.
        self.headers_prefix = len(header_block).to_bytes(3, "big") + bytes(
            (HEADERS, self.header_flags))
        self.header_block = header_block
        self.pending: deque[list[int]] = deque()  # [stream id, body bytes sent] to finish
        self.stream_windows: dict[int, int] = {}  # what each body may still send
        self.peer_window = 65535  # the server's INITIAL_WINDOW_SIZE
        self.decoder = BlockCachingDecoder()
        self.decoder.max_header_list_size = 1 << 20
        self.transport: Any = None
        self.buffer = b""
        self.next_id = 1
        self.open: dict[int, list[int]] = {}  # id -> [start, status, head bytes, body bytes]
        self.unacked = 0  # DATA bytes not yet given back to the connection window
        self.block = b""  # a header block continued in CONTINUATION frames
        self.block_stream = 0
        self.block_ends = False
        self.connect_started_ns = monotonic_ns()
        self.connected_ns = 0
        self.activity_ns = 0
        self.first_byte = True
        self.closed = False
        self.going_away = False
        self.answered = 0
        self.send_window = 65535  # the server's connection window for our DATA

    # asyncio protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        now = monotonic_ns()
        self.connected_ns = self.activity_ns = now
        transport.write(OPENING)
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
            self.read_frames(data, now)
        except (FrameError, HPACKError, ValueError, IndexError):
            self.fail("protocol", now)
            return
        if not self.closed:
            if self.unacked >= WINDOW_REFILL:
                self.transport.write(frame(WINDOW_UPDATE, 0, 0,
                                           self.unacked.to_bytes(4, "big")))
                self.unacked = 0
            self.fill(now)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail("reset", monotonic_ns())

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    # sending

    def room(self) -> int:
        if self.closed or self.going_away or self.next_id > LAST_STREAM_ID:
            return 0
        if self.pending:  # new streams wait until the bodies in flight are sent
            return 0
        return self.limit - len(self.open)

    def fill(self, now: int) -> None:
        """Open as many streams as the run allows and the stream limit leaves room for."""
        room = self.room()
        if room <= 0:
            return
        run = self.run
        out = []
        count = 0
        while count < room:
            start = run.take(now)
            if start < 0:
                break
            out.append(self.request_bytes(start))
            count += 1
        if out:
            self.transport.write(b"".join(out))
            if self.pending:
                self.send_bodies()
        if count < room:
            run.has_room(self)

    def request_bytes(self, start: int) -> bytes:
        stream_id = self.next_id
        self.next_id += 2
        self.open[stream_id] = [start, 0, 0, 0]
        sid = stream_id.to_bytes(4, "big")
        if self.body:
            self.pending.append([stream_id, 0])
            self.stream_windows[stream_id] = self.peer_window
        return self.headers_prefix + sid + self.header_block

    def send_one(self, start: int) -> None:
        """Send one request due at `start` (the open model's scheduler)."""
        self.transport.write(self.request_bytes(start))
        if self.pending:
            self.send_bodies()

    def send_bodies(self) -> None:
        """Send request body DATA as far as the server's flow-control windows allow."""
        out = []
        pending = self.pending
        while pending and self.send_window > 0:
            stream_id, offset = pending[0]
            if stream_id not in self.open:  # answered or reset before its body was sent
                pending.popleft()
                self.stream_windows.pop(stream_id, None)
                self.body_done(stream_id)
                continue
            body = self.body_of(stream_id)
            size = min(self.send_window, self.stream_windows[stream_id], MAX_FRAME,
                       len(body) - offset)
            if size <= 0:
                break
            offset += size
            self.send_window -= size
            self.stream_windows[stream_id] -= size
            last = offset >= len(body)
            out.append(frame(DATA, END_STREAM if last else 0, stream_id,
                             body[offset - size:offset]))
            if last:
                pending.popleft()
                del self.stream_windows[stream_id]
                self.body_done(stream_id)
            else:
                pending[0][1] = offset
        if out:
            self.transport.write(b"".join(out))

    def body_of(self, stream_id: int) -> bytes:
        """The request body stream `stream_id` sends (the same for every stream here)."""
        return self.body

    def body_done(self, stream_id: int) -> None:
        """Stream `stream_id` needs its body no more (nothing to forget here)."""

    # receiving

    def read_frames(self, data: bytes, now: int) -> None:
        position = 0
        size = len(data)
        while size - position >= 9:
            length = int.from_bytes(data[position:position + 3], "big")
            end = position + 9 + length
            if end > size:
                if length > MAX_FRAME:  # more than we allow: not HTTP/2, never wait for it
                    raise FrameError("a frame larger than SETTINGS_MAX_FRAME_SIZE")
                break
            kind = data[position + 3]
            flags = data[position + 4]
            stream_id = int.from_bytes(data[position + 5:position + 9], "big") & 0x7FFFFFFF
            if self.block_stream and kind != CONTINUATION:
                raise FrameError("a header block interrupted")
            if kind == DATA:
                self.unacked += length
                stream = self.open.get(stream_id)
                if stream is not None:
                    stream[3] += length
                    if flags & END_STREAM:
                        self.finish(stream_id, now)
            elif kind == HEADERS:
                start = position + 9
                stop = end
                if flags & PADDED:
                    stop -= data[start]
                    start += 1
                if flags & PRIORITY_FLAG:
                    start += 5
                if start > stop:
                    raise FrameError("HEADERS padding too long")
                block = data[start:stop]
                if flags & END_HEADERS:
                    self.headers(stream_id, block, bool(flags & END_STREAM), length, now)
                else:
                    self.block, self.block_stream = block, stream_id
                    self.block_ends = bool(flags & END_STREAM)
            elif kind == CONTINUATION:
                if stream_id != self.block_stream or not stream_id:
                    raise FrameError("CONTINUATION without a header block")
                self.block += data[position + 9:end]
                if flags & END_HEADERS:
                    block, self.block, self.block_stream = self.block, b"", 0
                    self.headers(stream_id, block, self.block_ends, len(block), now)
            elif kind == SETTINGS:
                if not flags & ACK:
                    self.settings(data[position + 9:end])
            elif kind == PING:
                if not flags & ACK:
                    self.transport.write(frame(PING, ACK, 0, data[position + 9:end]))
            elif kind == RST_STREAM:
                if stream_id in self.open:
                    self.stream_failed(stream_id, now, self.open.pop(stream_id))
            elif kind == GOAWAY:
                self.going_away = True
                last = int.from_bytes(data[position + 9:position + 13], "big") & 0x7FFFFFFF
                for lost in [sid for sid in self.open if sid > last]:
                    self.stream_failed(lost, now, self.open.pop(lost))
                if not self.open:
                    self.fail("reset", now)
                    return
            elif kind == WINDOW_UPDATE:
                increment = int.from_bytes(data[position + 9:end], "big") & 0x7FFFFFFF
                if not stream_id:
                    self.send_window += increment
                elif stream_id in self.stream_windows:
                    self.stream_windows[stream_id] += increment
                if self.pending:
                    self.send_bodies()
            elif kind == PUSH_PROMISE:
                raise FrameError("PUSH_PROMISE after ENABLE_PUSH 0")
            position = end
        if position < size:
            self.buffer = data[position:]

    def settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise FrameError("SETTINGS payload not a multiple of 6")
        for offset in range(0, len(payload), 6):
            key = int.from_bytes(payload[offset:offset + 2], "big")
            value = int.from_bytes(payload[offset + 2:offset + 6], "big")
            if key == 3:  # MAX_CONCURRENT_STREAMS
                self.limit = max(0, min(self.streams_wanted, value))
            elif key == 4:  # INITIAL_WINDOW_SIZE: streams' windows move by the change
                for stream_id in self.stream_windows:
                    self.stream_windows[stream_id] += value - self.peer_window
                self.peer_window = value
            elif key == 1:  # HEADER_TABLE_SIZE: the decoder follows the server's encoder
                self.decoder.header_table_size = value
        self.transport.write(SETTINGS_ACK)

    def headers(self, stream_id: int, block: bytes, ends: bool, size: int, now: int) -> None:
        fields = self.decoder.decode(block, raw=True)
        stream = self.open.get(stream_id)
        if stream is None:
            return  # a stream we gave up on; the block was decoded for the table's sake
        stream[2] += size
        if not stream[1]:
            if not fields or fields[0][0] != b":status" or not fields[0][1].isdigit():
                raise FrameError("a response without :status first")
            status = int(fields[0][1])
            if status < 200:
                return  # interim; the final head follows
            stream[1] = status
        if ends:
            self.finish(stream_id, now)

    def finish(self, stream_id: int, now: int) -> None:
        start, status, head_bytes, body_bytes = self.open.pop(stream_id)
        if not status:
            raise FrameError("a stream ended without a response head")
        self.answered += 1
        self.run.answered(start, now, status, head_bytes, body_bytes)

    def stream_failed(self, stream_id: int, now: int, stream: list[int] | None = None) -> None:
        if stream is None:
            return
        self.run.errored(stream[0], now, "reset")

    def fail(self, kind: str, now: int) -> None:
        """Count the open streams as errored (`kind`), close, and let the run reconnect."""
        if self.closed:
            return
        self.closed = True
        run = self.run
        streams = list(self.open.values())
        self.open.clear()
        for stream in streams:
            run.errored(stream[0], now, kind)
        if self.transport is not None:
            self.transport.abort()
        run.lost(self)

    def timed_out(self, now: int, timeout_ns: int) -> bool:
        if self.open and not self.closed and now - self.activity_ns > timeout_ns:
            self.fail("timeout", now)
            return True
        return False
