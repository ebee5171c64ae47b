# cython: annotation_typing=False
"""One WebSocket connection of a load run: upgrade, then echo round trips at frame level.

`WSConnection` sends the upgrade request, checks the 101 answer (status and
`Sec-WebSocket-Accept`), then sends a pre-built masked text frame each time the
run allows (up to `-m` messages in flight) and counts each whole message the
server sends back as the answer to the oldest one: its round-trip time is the
latency.  Pings are answered, a close is answered and ends the connection.  A
refused upgrade is a protocol error.  Like the HTTP engines it builds no
message objects; what to send and where results go is the run's job.
"""

from __future__ import annotations

import base64
import hashlib
import os
from array import array
from time import monotonic_ns
from typing import Any

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 65536
MASK_POOL = 1024  # random bytes fetched at a time: 256 masks per getrandom call
COMPILED = not __file__.endswith(".py")  # this module is the Cython-compiled one
CLOSE, PING, PONG = 0x8, 0x9, 0xA


class HandshakeError(Exception):
    """The server did not accept the WebSocket upgrade, or broke the framing."""


def frame_head(opcode: int, size: int) -> bytes:
    """The first bytes of a final, masked client frame of `size` payload bytes (the mask
    follows them)."""
    if size < 126:
        return bytes((0x80 | opcode, 0x80 | size))
    if size < 65536:
        return bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    return bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")


def mask_repeater(size: int) -> int:
    """The integer whose product with a 4-byte mask repeats that mask over `size` bytes
    (little-endian, one copy every 4 bytes, the last copy cut short by `to_bytes`' caller)."""
    # built from bytes, not shifts: compiled, a shift of C integers would overflow
    return int.from_bytes(b"\1\0\0\0" * ((size + 3) // 4), "little")


def all_ones(size: int) -> int:
    """`size` bytes of one bits, as an integer (what keeps a repeated mask `size` bytes
    long)."""
    return int.from_bytes(b"\xff" * size, "little")


def masked_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final client frame (RFC 6455 5.2: clients mask every frame)."""
    size = len(payload)
    masked = ((int.from_bytes(mask, "little") * mask_repeater(size)) & all_ones(size)
              ) ^ int.from_bytes(payload, "little")
    return frame_head(opcode, size) + mask + masked.to_bytes(size, "little")


class WSConnection:
    """A WebSocket connection sending echo messages as the run allows."""

    def __init__(self, run: Any, target: Any, options: Any) -> None:
        self.run = run
        self.key = base64.b64encode(os.urandom(16))
        self.expected_accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
        lines = [f"GET {target.path} HTTP/1.1", f"host: {target.authority}",
                 "upgrade: websocket", "connection: Upgrade",
                 f"sec-websocket-key: {self.key.decode()}", "sec-websocket-version: 13"]
        lines += [f"{name}: {value}" for name, value in options.headers]
        self.upgrade = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = options.body or b"x" * options.ws_message_size
        # what each message's frame is made of: its head, then a fresh mask, then the
        # payload XOR that mask repeated (`payload_bits` the payload as one integer)
        self.size = len(payload)
        self.head = frame_head(0x1 if not options.body else 0x2, self.size)
        self.payload = payload
        self.payload_bits = int.from_bytes(payload, "little")
        self.repeater = mask_repeater(self.size)
        self.all_ones = all_ones(self.size)
        self.masks = b""
        self.mask_at = 0
        self.write: Any = None
        self.depth = options.streams
        self.transport: Any = None
        self.upgraded = False
        self.buffer = b""
        # the start times of the messages in flight, oldest first: a ring of C integers
        # (`waiting` of them from `oldest`), no Python int or deque call per message
        self.starts = array("q", bytes(8 * self.depth))
        self.oldest = 0
        self.waiting = 0
        self.message_bytes = 0
        self.connect_started_ns = monotonic_ns()
        self.connected_ns = 0
        self.activity_ns = 0
        self.first_byte = True
        self.closed = False
        self.answered = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.write = transport.write  # bound once: one call per write, no method lookup
        self.activity_ns = monotonic_ns()
        transport.write(self.upgrade)

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
            if not self.upgraded:
                data = self.handshake(data, now)
                if data is None:
                    return
            self.read_frames(data, now)
        except HandshakeError:
            if not self.upgraded:  # a refused upgrade is one errored request
                self.run.attempt_failed("protocol")
            self.fail("protocol", now)
            return
        if not self.closed:
            self.fill(now)

    def handshake(self, data: bytes, now: int) -> bytes | None:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HEAD:
                raise HandshakeError("upgrade answer too large")
            self.buffer = data
            return None
        head = data[:end].split(b"\r\n")
        if not head[0].startswith(b"HTTP/1.1 101"):
            raise HandshakeError(f"upgrade refused: {head[0][:64]!r}")
        accept = b""
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-accept":
                accept = value.strip()
        if accept != self.expected_accept:
            raise HandshakeError("wrong Sec-WebSocket-Accept")
        self.upgraded = True
        self.connected_ns = now
        self.run.connected(self, now - self.connect_started_ns)
        return data[end + 4:]

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail("reset", monotonic_ns())

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def room(self) -> int:
        return 0 if self.closed or not self.upgraded else self.depth - self.waiting

    def fill(self, now: int) -> None:
        room = self.room()
        count = 0
        while count < room:
            start = self.run.take(now)
            if start < 0:
                break
            self.push(start)
            count += 1
        if count:
            self.write(self.frames(count))
        if count < room:
            self.run.has_room(self)

    def send_one(self, start: int) -> None:
        self.push(start)
        self.write(self.frames(1))

    def push(self, start: int) -> None:
        """One more message in flight, sent at `start` (room() said there is room)."""
        index = self.oldest + self.waiting
        if index >= self.depth:
            index -= self.depth
        self.starts[index] = start
        self.waiting += 1

    def pop(self) -> int:
        """The start time of the oldest message in flight, now answered or lost."""
        start = self.starts[self.oldest]
        self.oldest += 1
        if self.oldest == self.depth:
            self.oldest = 0
        self.waiting -= 1
        return start

    def next_mask(self) -> int:
        """Where the next unused 4 random bytes start in `masks` (refilled when spent)."""
        at = self.mask_at
        if at + 4 > len(self.masks):
            self.masks = os.urandom(MASK_POOL)
            at = 0
        self.mask_at = at + 4
        return at

    def frames(self, count: int) -> Any:
        """`count` copies of the message for one write, each its own frame under a fresh
        mask nobody could predict."""
        if not COMPILED:
            return b"".join([self.frame_by_integers() for _ in range(count)])
        # compiled: C loops over the bytes (pointers into `out`, `head`, `payload`, `masks`).
        # `out` is a new bytes object (6 bytes or more: never a shared one) filled in place
        # before anyone else sees it, as C code fills PyBytes_FromStringAndSize(NULL, n):
        # a bytearray would cost the transport a memoryview per write.
        head_size = len(self.head)
        size = self.size
        out = bytes(count * (head_size + 4 + size))
        into = out
        head = self.head
        payload = self.payload
        position = 0
        for _ in range(count):
            at = self.next_mask()
            masks = self.masks
            for index in range(head_size):
                into[position + index] = head[index]
            position += head_size
            for index in range(4):
                into[position + index] = masks[at + index]
            position += 4
            for index in range(size):
                into[position + index] = payload[index] ^ masks[at + (index & 3)]
            position += size
        return out

    def frame_by_integers(self) -> bytes:
        """One frame, the mask applied as a big-integer XOR (pure Python: C speed for the
        bytes of any size, where a loop over them would be slow)."""
        at = self.next_mask()
        mask = self.masks[at:at + 4]
        masked = ((int.from_bytes(mask, "little") * self.repeater) & self.all_ones
                  ) ^ self.payload_bits
        return self.head + mask + masked.to_bytes(self.size, "little")

    def read_frames(self, data: bytes, now: int) -> None:
        position = 0
        size = len(data)
        while size - position >= 2:
            first, second = data[position], data[position + 1]
            if second & 0x80:
                raise HandshakeError("a masked frame from the server")
            length = second & 0x7F
            start = position + 2
            if length == 126:
                if size - start < 2:
                    break
                length = int.from_bytes(data[start:start + 2], "big")
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                if data[start] & 0x80:  # RFC 6455 5.2: the most significant bit must be 0
                    raise HandshakeError("a frame length past 63 bits")
                length = int.from_bytes(data[start:start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == PING:
                self.transport.write(masked_frame(PONG, data[start:end], os.urandom(4)))
            elif opcode == CLOSE:
                self.transport.write(masked_frame(CLOSE, data[start:start + 2], os.urandom(4)))
                self.fail("reset", now)
                return
            elif opcode != PONG:
                self.message_bytes += length
                if first & 0x80:  # FIN: a whole message, the echo of the oldest one sent
                    if not self.waiting:
                        raise HandshakeError("a message nobody asked for")
                    self.answered += 1
                    self.run.answered(self.pop(), now, 101, end - position - length,
                                      self.message_bytes)
                    self.message_bytes = 0
            position = end
        if position < size:
            self.buffer = data[position:]

    def fail(self, kind: str, now: int) -> None:
        if self.closed:
            return
        self.closed = True
        while self.waiting:
            self.run.errored(self.pop(), now, kind)
        if self.transport is not None:
            self.transport.abort()
        self.run.lost(self)

    def timed_out(self, now: int, timeout_ns: int) -> bool:
        if (self.waiting or not self.upgraded) and not self.closed and \
                now - self.activity_ns > timeout_ns:
            if not self.upgraded:
                self.run.attempt_failed("timeout")
            self.fail("timeout", now)
            return True
        return False
