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
from qactuar.load.http2_engine import H2Connection

# RFC 9113 frame type and flags (the engine's own are C constants when compiled)
_HEADERS = 0x1
_END_STREAM, _END_HEADERS = 0x1, 0x4


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

    # the engine's send_bodies sends each stream's own body, asking these

    def body_of(self, stream_id: int) -> bytes:
        return self.bodies.get(stream_id, b"")

    def body_done(self, stream_id: int) -> None:
        self.bodies.pop(stream_id, None)
