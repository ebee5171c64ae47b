"""Connections that send a target file's requests in turn instead of one request over and over.

The engines write one pre-built request per connection; these subclasses
take the next pre-built request of their origin's `Rotation` for each
request instead (the rotation is shared by the origin's connections, so the
requests of a run go through the file's entries in order).  Only sending
changes: responses are read by the engines as always.
"""

from __future__ import annotations

from typing import Any

from qactuar.load.http1_engine import H1Connection
from qactuar.load.http2_engine import H2Connection, frame

# RFC 9113 frame types and flags (the engine's own are C constants when compiled)
_DATA, _HEADERS = 0x0, 0x1
_END_STREAM, _END_HEADERS = 0x1, 0x4
_MAX_FRAME = 16384


class Rotation:
    """The pre-built requests of one origin, handed out in turn."""

    def __init__(self, requests: list[Any]) -> None:
        self.requests = requests
        self.position = 0

    def next(self) -> Any:
        request = self.requests[self.position]
        self.position = (self.position + 1) % len(self.requests)
        return request


class RotatingH1Connection(H1Connection):
    """HTTP/1.1: each request is the rotation's next whole request (head and body)."""

    def __init__(self, run: Any, rotation: Rotation, depth: int) -> None:
        super().__init__(run, rotation.requests[0], depth, False)
        self.rotation = rotation

    def fill(self, now: int) -> None:
        run = self.run
        room = self.depth - len(self.sent)
        out = []
        while len(out) < room:
            start = run.take(now)
            if start < 0:
                break
            self.sent.append(start)
            out.append(self.rotation.next())
        if out:
            self.transport.write(b"".join(out))
        if len(out) < room:
            run.has_room(self)

    def send_one(self, start: int) -> None:
        self.sent.append(start)
        self.transport.write(self.rotation.next())


class RotatingH2Connection(H2Connection):
    """HTTP/2: each stream is the rotation's next (header block, body); bodies are sent per
    stream as the server's flow-control windows allow."""

    def __init__(self, run: Any, rotation: Rotation, streams: int) -> None:
        block, body = rotation.requests[0]
        super().__init__(run, block, body, streams)
        self.rotation = rotation
        self.bodies: dict[int, bytes] = {}

    def request_bytes(self, start: int) -> bytes:
        block, body = self.rotation.next()
        stream_id = self.next_id
        self.next_id += 2
        self.open[stream_id] = [start, 0, 0, 0]
        if body:
            self.pending.append([stream_id, 0])
            self.stream_windows[stream_id] = self.peer_window
            self.bodies[stream_id] = body
        flags = _END_HEADERS | (0 if body else _END_STREAM)
        return (len(block).to_bytes(3, "big") + bytes((_HEADERS, flags))
                + stream_id.to_bytes(4, "big") + block)

    def send_bodies(self) -> None:
        out = []
        pending = self.pending
        while pending and self.send_window > 0:
            stream_id, offset = pending[0]
            body = self.bodies.get(stream_id, b"")
            if stream_id not in self.open:
                pending.popleft()
                self.bodies.pop(stream_id, None)
                self.stream_windows.pop(stream_id, None)
                continue
            size = min(self.send_window, self.stream_windows[stream_id], _MAX_FRAME,
                       len(body) - offset)
            if size <= 0:
                break
            offset += size
            self.send_window -= size
            self.stream_windows[stream_id] -= size
            last = offset >= len(body)
            out.append(frame(_DATA, _END_STREAM if last else 0, stream_id,
                             body[offset - size:offset]))
            if last:
                pending.popleft()
                del self.stream_windows[stream_id]
                del self.bodies[stream_id]
            else:
                pending[0][1] = offset
        if out:
            self.transport.write(b"".join(out))
