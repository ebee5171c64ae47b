# cython: annotation_typing=False
"""The server side of one HTTP/2 connection's frames (RFC 9113), without `h2`.

Owns the wire state of a connection: the preface, reading frames out of the
bytes a client sends (split anywhere across reads), every frame's size, flag
and stream-id rules, stream states (idle, open, half-closed, closed, reserved
for a push), flow-control windows both ways, SETTINGS both ways, PING answers,
header blocks (HEADERS + CONTINUATION, padding, priority) through HPACK, and
the frames the server sends.  What a frame means for a request is the
handler's: `H2Connection` calls its `on_*` methods (a request head, body bytes,
a reset, a window opened, ...) and never sees ASGI or an app.

A client that breaks a rule for the whole connection gets `H2ConnectionError`
raised out of `receive` with the GOAWAY already queued; a rule for one stream
gets that stream reset (RST_STREAM) here, the handler told (`on_stream_error`),
and the connection goes on.  Shapes
of denial of service that are frame-level (endless CONTINUATION, a header block
or list over the limit) raise `H2DenialOfService`; flood counts of whole frames
(SETTINGS, PING, resets, empty DATA) are the handler's, told by its callbacks.

Sending: `send_headers`, `send_data`, `push_promise`, `reset_stream`,
`acknowledge`, `goaway`; they queue bytes that `data_to_send` hands over, and
raise `StreamUnavailable` for a stream that can no longer carry them.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any

from hpack.exceptions import HPACKError, OversizedHeaderListError

from qactuar.protocols.hpack_codec import BlockCachingDecoder, DynamicTableEncoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Error codes (RFC 9113 7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xA
ENHANCE_YOUR_CALM = 0xB
INADEQUATE_SECURITY = 0xC
HTTP_1_1_REQUIRED = 0xD

# Frame types and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# Settings (RFC 9113 6.5.2, RFC 8441 3).
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6
ENABLE_CONNECT_PROTOCOL = 0x8

DEFAULT_WINDOW = 65535
DEFAULT_FRAME_SIZE = 16384
MAX_WINDOW = 0x7FFFFFFF
LARGEST_FRAME_SIZE = 0xFFFFFF
# A header block may take this many CONTINUATION frames (a real client needs one or two).
CONTINUATION_LIMIT = 64
# Streams closed lately, remembered to tell "closed" from "never opened" (RFC 9113 5.1).
CLOSED_MEMORY = 256
_UNLIMITED = 0x7FFFFFFF


class H2ConnectionError(Exception):
    """The client broke a rule of the whole connection: GOAWAY with `error_code` is queued."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class H2DenialOfService(H2ConnectionError):
    """A frame-level denial-of-service shape (the GOAWAY says ENHANCE_YOUR_CALM)."""

    def __init__(self, message: str) -> None:
        super().__init__(ENHANCE_YOUR_CALM, message)


class StreamUnavailable(Exception):
    """The stream is closed (or never was) on our side: nothing more can be sent on it."""


_FRAME_HEAD = struct.Struct(">BHBBL")  # length (24 bits as 8 + 16), type, flags, stream id


def frame_head(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    """The 9 bytes that start a frame."""
    return _FRAME_HEAD.pack(length >> 16, length & 0xFFFF, kind, flags, stream_id)


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


class H2Stream:
    """One stream's state on the connection: who has ended it and its two windows."""

    __slots__ = (
        "client_closed",
        "content_length",
        "pushed",
        "receive_window",
        "received",
        "send_window",
        "server_closed",
        "stream_id",
        "trailers",
    )

    def __init__(self, stream_id: int, send_window: int, pushed: bool) -> None:
        self.stream_id = stream_id
        self.client_closed = pushed  # a pushed stream is half-closed (remote) from the start
        self.server_closed = False
        self.send_window = send_window
        self.receive_window = DEFAULT_WINDOW
        self.content_length = -1  # what the request's Content-Length says (-1: none)
        self.received = 0  # request body bytes received
        self.pushed = pushed
        self.trailers = False  # the client's block on this stream next is its trailers


class H2Connection:
    """The frames of one server-side HTTP/2 connection.  `handler` gets what they mean."""

    def __init__(self, handler: Any, max_header_size: int, max_concurrent_streams: int,
                 connect_protocol: bool) -> None:
        self.handler = handler
        self.max_header_size = max_header_size
        self.max_concurrent_streams = max_concurrent_streams
        self.connect_protocol = connect_protocol
        self.streams: dict[int, H2Stream] = {}
        self.open_inbound = 0  # client streams not yet closed
        self.open_pushed = 0
        self.highest_inbound_stream_id = 0
        self.next_push_id = 2
        self.send_window = DEFAULT_WINDOW  # connection-level, what we may send
        self.receive_window = DEFAULT_WINDOW  # connection-level, what the client may send
        # The client's settings (defaults until its SETTINGS say otherwise).
        self.remote_initial_window = DEFAULT_WINDOW
        self.max_outbound_frame_size = DEFAULT_FRAME_SIZE
        self.remote_max_concurrent_streams = _UNLIMITED
        self.enable_push = True
        self.stopped = False  # a GOAWAY for an error went out: nothing more is read
        self._out: list[bytes] = []
        self._buffer = b""
        self._preface_left = len(PREFACE)
        self._settings_seen = False
        self._closed_streams: dict[int, bool] = {}  # stream id -> reset by us
        # A header block in progress (HEADERS without END_HEADERS): its stream, flags, parts.
        self._block_stream = 0
        self._block_flags = 0
        self._block_parts: list[bytes] = []
        self._block_size = 0
        self._block_frames = 0
        self.encoder = DynamicTableEncoder()
        decoder = BlockCachingDecoder()
        decoder.max_header_list_size = max_header_size
        self.decoder = decoder

    # -- set-up ---------------------------------------------------------------------

    def initiate_connection(self) -> None:
        """Queue our SETTINGS, the first frame a server sends (RFC 9113 3.4)."""
        values = [(HEADER_TABLE_SIZE, 4096), (MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
                  (INITIAL_WINDOW_SIZE, DEFAULT_WINDOW), (MAX_FRAME_SIZE, DEFAULT_FRAME_SIZE),
                  (MAX_HEADER_LIST_SIZE, self.max_header_size),
                  (ENABLE_CONNECT_PROTOCOL, 1 if self.connect_protocol else 0)]
        payload = b"".join(code.to_bytes(2, "big") + _u32(value) for code, value in values)
        self._out.append(frame_head(len(payload), SETTINGS, 0, 0) + payload)

    def initiate_upgrade(self, settings_header: bytes) -> None:
        """After an h2c upgrade: the client's HTTP2-Settings apply (no ACK), and its
        request is stream 1, half-closed (remote) (RFC 7540 3.2).  Raises ValueError
        or H2ConnectionError for bad settings."""
        try:
            padding = b"=" * (-len(settings_header) % 4)
            payload = base64.urlsafe_b64decode(settings_header + padding)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"HTTP2-Settings is not base64url: {exc}") from None
        if len(payload) % 6:
            raise ValueError("HTTP2-Settings is not a whole number of settings")
        self.initiate_connection()
        self._apply_settings(payload)
        stream = self._open_stream(1)
        stream.client_closed = True

    # -- receiving ------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Read the frames in `data` (and what was left of the last read), calling the handler."""
        if self.stopped:
            return
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        at = 0
        size = len(data)
        if self._preface_left:
            take = min(self._preface_left, size)
            start = len(PREFACE) - self._preface_left
            if data[:take] != PREFACE[start:start + take]:
                self._fail(PROTOCOL_ERROR, "invalid connection preface")
            self._preface_left -= take
            at = take
        while at + 9 <= size:
            length = data[at] << 16 | data[at + 1] << 8 | data[at + 2]
            if length > DEFAULT_FRAME_SIZE:
                self._fail(FRAME_SIZE_ERROR, f"a frame of {length} bytes, over the limit")
            end = at + 9 + length
            if end > size:
                break
            kind = data[at + 3]
            flags = data[at + 4]
            stream_id = ((data[at + 5] & 0x7F) << 24 | data[at + 6] << 16 | data[at + 7] << 8
                         | data[at + 8])  # the reserved bit is ignored (RFC 9113 4.1)
            payload = data[at + 9:end]
            at = end
            if not self._settings_seen:
                if kind != SETTINGS or flags & ACK:
                    self._fail(PROTOCOL_ERROR, "the preface is not followed by SETTINGS")
                self._settings_seen = True
            if self._block_stream:
                if kind != CONTINUATION or stream_id != self._block_stream:
                    self._fail(PROTOCOL_ERROR, "a frame other than CONTINUATION in a header block")
                self._continuation(flags, payload)
            elif kind == HEADERS:
                self._headers(flags, stream_id, payload)
            elif kind == DATA:
                self._data(flags, stream_id, payload)
            elif kind == WINDOW_UPDATE:
                self._window_update(stream_id, payload)
            elif kind == SETTINGS:
                self._settings(flags, stream_id, payload)
            elif kind == PING:
                self._ping(flags, stream_id, payload)
            elif kind == RST_STREAM:
                self._rst_stream(stream_id, payload)
            elif kind == PRIORITY:
                self._priority(stream_id, payload)
            elif kind == GOAWAY:
                if stream_id:
                    self._fail(PROTOCOL_ERROR, "GOAWAY on a stream")
                if length < 8:
                    self._fail(FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
                self.handler.on_goaway()
            elif kind == CONTINUATION:
                self._fail(PROTOCOL_ERROR, "CONTINUATION outside a header block")
            elif kind == PUSH_PROMISE:
                self._fail(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
            # Frames of unknown types are ignored (RFC 9113 4.1, 5.5).
            if self.stopped:
                return
        if at < size:
            self._buffer = data[at:]

    def _fail(self, code: int, message: str) -> None:
        """A connection error: GOAWAY with `code`, nothing more is read."""
        self.goaway(code)
        self.stopped = True
        raise H2ConnectionError(code, message)

    def _deny(self, message: str) -> None:
        self.goaway(ENHANCE_YOUR_CALM)
        self.stopped = True
        raise H2DenialOfService(message)

    def _stream_error(self, stream_id: int, code: int, message: str) -> None:
        """A stream error (RFC 9113 5.4.2): RST_STREAM with `code`, and the handler told."""
        self.reset_stream(stream_id, code)
        self.handler.on_stream_error(stream_id, message)

    def _unpad(self, flags: int, payload: bytes) -> bytes:
        if flags & PADDED:
            if not payload:
                self._fail(FRAME_SIZE_ERROR, "PADDED frame without a pad length")
            pad = payload[0]
            if pad >= len(payload):
                self._fail(PROTOCOL_ERROR, "padding as long as the frame")
            return payload[1:len(payload) - pad]
        return payload

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "HEADERS on stream 0")
        block = self._unpad(flags, payload) if flags & PADDED else payload
        if flags & PRIORITY_FLAG:
            if len(block) < 5:
                self._fail(FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            depends_on = (block[0] & 0x7F) << 24 | block[1] << 16 | block[2] << 8 | block[3]
            block = block[5:]
            if depends_on == stream_id:
                self._fail(PROTOCOL_ERROR, f"stream {stream_id} depends on itself")
        if flags & END_HEADERS:
            self._header_block(flags, stream_id, block)
            return
        self._block_stream = stream_id
        self._block_flags = flags
        self._block_parts = [block]
        self._block_size = len(block)
        self._block_frames = 0

    def _continuation(self, flags: int, payload: bytes) -> None:
        self._block_frames += 1
        self._block_size += len(payload)
        if self._block_frames > CONTINUATION_LIMIT:
            self._deny(f"more than {CONTINUATION_LIMIT} CONTINUATION frames in a header block")
        if self._block_size > self.max_header_size + 4096:
            self._deny("a header block larger than the header list limit")
        self._block_parts.append(payload)
        if flags & END_HEADERS:
            stream_id = self._block_stream
            block = b"".join(self._block_parts)
            self._block_stream = 0
            self._block_parts = []
            self._header_block(self._block_flags, stream_id, block)

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self.decoder.decode(block, raw=True)
        except OversizedHeaderListError as exc:
            self._deny(f"header list over the limit ({exc})")
        except HPACKError as exc:
            self._fail(COMPRESSION_ERROR, f"broken header block ({exc})")
        except (IndexError, ValueError, UnicodeDecodeError) as exc:  # hpack's own slips
            self._fail(COMPRESSION_ERROR, f"broken header block ({exc})")
        raise AssertionError("unreachable")  # _fail and _deny raise

    def _header_block(self, flags: int, stream_id: int, block: bytes) -> None:
        """A whole header block: a new request, trailers, or a refusal."""
        ended = bool(flags & END_STREAM)
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.highest_inbound_stream_id and stream_id & 1:
                fields = self._decode(block)
                if self.open_inbound >= self.max_concurrent_streams:
                    self._fail(PROTOCOL_ERROR, f"more than {self.max_concurrent_streams} "
                                               "concurrent streams")
                stream = self._open_stream(stream_id)
                if ended:
                    stream.client_closed = True
                else:  # a body may follow: it must match its Content-Length
                    self._note_content_length(stream, fields)
                self.handler.on_request(stream_id, fields, ended)
                return
            self._decode(block)  # keeps the HPACK context in step
            if not stream_id & 1:
                self._fail(PROTOCOL_ERROR, f"HEADERS on the server's stream id {stream_id}")
            reset_by_us = self._closed_streams.get(stream_id)
            if reset_by_us:
                return  # frames in flight when we reset it
            if reset_by_us is None:
                self._fail(PROTOCOL_ERROR, f"HEADERS on stream {stream_id}, lower than one "
                                           "already opened")
            self._fail(STREAM_CLOSED, f"HEADERS on closed stream {stream_id}")
        fields = self._decode(block)
        if stream.client_closed:
            self._stream_error(stream_id, STREAM_CLOSED, "HEADERS after the client's END_STREAM")
            return
        if not ended:
            self._fail(PROTOCOL_ERROR, "trailers without END_STREAM")
        self._client_ended(stream)
        self.handler.on_trailers(stream_id, fields)

    def _note_content_length(self, stream: H2Stream, fields: list[tuple[bytes, bytes]]) -> None:
        for name, value in fields:
            if name == b"content-length":
                if value.isdigit():
                    stream.content_length = int(value)
                return

    def _open_stream(self, stream_id: int) -> H2Stream:
        stream = H2Stream(stream_id, self.remote_initial_window, False)
        self.streams[stream_id] = stream
        self.open_inbound += 1
        self.highest_inbound_stream_id = stream_id
        return stream

    def _client_ended(self, stream: H2Stream) -> None:
        stream.client_closed = True
        if stream.server_closed:
            self._close_stream(stream, False)

    def _close_stream(self, stream: H2Stream, reset_by_us: bool) -> None:
        stream_id = stream.stream_id
        if self.streams.pop(stream_id, None) is None:
            return
        if stream.pushed:
            self.open_pushed -= 1
        else:
            self.open_inbound -= 1
        closed = self._closed_streams
        closed[stream_id] = reset_by_us
        if len(closed) > CLOSED_MEMORY:
            del closed[next(iter(closed))]

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "DATA on stream 0")
        flow_length = len(payload)
        data = self._unpad(flags, payload) if flags & PADDED else payload
        stream = self.streams.get(stream_id)
        if stream is None and self._is_idle(stream_id):
            self._fail(PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
        if flow_length > self.receive_window:
            self._fail(FLOW_CONTROL_ERROR, "DATA over the connection's flow-control window")
        self.receive_window -= flow_length
        if stream is None or stream.client_closed:
            # Nobody reads it: the connection's window opens again at once.
            self.acknowledge(0, flow_length)
            if stream is not None:
                self._stream_error(stream_id, STREAM_CLOSED, "DATA after the client's END_STREAM")
            elif not self._closed_streams.get(stream_id):
                self.reset_stream(stream_id, STREAM_CLOSED)
            return
        if flow_length > stream.receive_window:
            self._fail(FLOW_CONTROL_ERROR, f"DATA over stream {stream_id}'s flow-control window")
        stream.receive_window -= flow_length
        stream.received += len(data)
        ended = bool(flags & END_STREAM)
        expected = stream.content_length
        if expected >= 0 and (stream.received > expected
                                 or (ended and stream.received != expected)):
            self.acknowledge(0, flow_length)
            self._stream_error(stream_id, PROTOCOL_ERROR, f"a body of {stream.received}+ bytes "
                                                          f"for a Content-Length of {expected}")
            return
        if ended:
            self._client_ended(stream)
        self.handler.on_data(stream_id, data, flow_length, ended)

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            self._fail(FRAME_SIZE_ERROR, "WINDOW_UPDATE of other than 4 bytes")
        increment = (payload[0] & 0x7F) << 24 | payload[1] << 16 | payload[2] << 8 | payload[3]
        if not stream_id:
            if not increment:
                self._fail(PROTOCOL_ERROR, "WINDOW_UPDATE of 0 for the connection")
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                self._fail(FLOW_CONTROL_ERROR, "the connection's window over 2^31-1")
            self.handler.on_window_opened()
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if self._is_idle(stream_id):
                self._fail(PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {stream_id}")
            return  # a closed stream: in flight before it closed
        if not increment:
            self._stream_error(stream_id, PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._stream_error(stream_id, FLOW_CONTROL_ERROR, "a stream window over 2^31-1")
            return
        self.handler.on_window_opened()

    def _is_idle(self, stream_id: int) -> bool:
        if stream_id & 1:
            return stream_id > self.highest_inbound_stream_id
        return stream_id >= self.next_push_id

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            self._fail(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                self._fail(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            self._fail(FRAME_SIZE_ERROR, "SETTINGS of a length not a multiple of 6")
        self._apply_settings(payload)
        self._out.append(frame_head(0, SETTINGS, ACK, 0))
        self.handler.on_settings()

    def _apply_settings(self, payload: bytes) -> None:
        for at in range(0, len(payload), 6):
            code = payload[at] << 8 | payload[at + 1]
            value = int.from_bytes(payload[at + 2:at + 6], "big")
            if code == HEADER_TABLE_SIZE:
                self.encoder.header_table_size = value
            elif code == ENABLE_PUSH:
                if value > 1:
                    self._fail(PROTOCOL_ERROR, f"SETTINGS_ENABLE_PUSH of {value}")
                self.enable_push = value == 1
            elif code == MAX_CONCURRENT_STREAMS:
                self.remote_max_concurrent_streams = value
            elif code == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    self._fail(FLOW_CONTROL_ERROR, f"SETTINGS_INITIAL_WINDOW_SIZE of {value}")
                delta = value - self.remote_initial_window
                self.remote_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        self._fail(FLOW_CONTROL_ERROR, "a stream's window over 2^31-1")
            elif code == MAX_FRAME_SIZE:
                if not DEFAULT_FRAME_SIZE <= value <= LARGEST_FRAME_SIZE:
                    self._fail(PROTOCOL_ERROR, f"SETTINGS_MAX_FRAME_SIZE of {value}")
                self.max_outbound_frame_size = value
            elif code == ENABLE_CONNECT_PROTOCOL and value > 1:
                self._fail(PROTOCOL_ERROR, f"SETTINGS_ENABLE_CONNECT_PROTOCOL of {value}")
            # MAX_HEADER_LIST_SIZE is advisory for what we send; unknown settings are ignored.

    def _ping(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            self._fail(PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            self._fail(FRAME_SIZE_ERROR, "PING of other than 8 bytes")
        if flags & ACK:
            return
        self._out.append(frame_head(8, PING, ACK, 0) + payload)
        self.handler.on_ping()

    def _rst_stream(self, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            self._fail(FRAME_SIZE_ERROR, "RST_STREAM of other than 4 bytes")
        stream = self.streams.get(stream_id)
        if stream is None:
            if self._is_idle(stream_id):
                self._fail(PROTOCOL_ERROR, f"RST_STREAM on idle stream {stream_id}")
            self.handler.on_reset(stream_id, False)
            return
        self._close_stream(stream, False)
        self.handler.on_reset(stream_id, True)

    def _priority(self, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            self._fail(PROTOCOL_ERROR, "PRIORITY on stream 0")
        if len(payload) != 5:
            self._fail(FRAME_SIZE_ERROR, "PRIORITY of other than 5 bytes")
        depends_on = (payload[0] & 0x7F) << 24 | payload[1] << 16 | payload[2] << 8 | payload[3]
        if depends_on == stream_id:  # (RFC 9113 5.3.1 allows a connection error)
            self._fail(PROTOCOL_ERROR, f"stream {stream_id} depends on itself")
        # Otherwise advice we do not take (RFC 9113 5.3.2: deprecated).

    # -- sending ----------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """What is queued to go out, taken."""
        out = self._out
        if not out:
            return b""
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        return data

    def send_window_of(self, stream_id: int) -> int:
        """How many body bytes may go out on `stream_id` now (its window and the connection's)."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.server_closed:
            raise StreamUnavailable(stream_id)
        return min(stream.send_window, self.send_window)

    def _block_frames_for(self, kind: int, flags: int, stream_id: int, block: bytes) -> None:
        """A header block as one frame, or split over CONTINUATION (RFC 9113 6.10)."""
        size = self.max_outbound_frame_size
        if len(block) <= size:
            self._out.append(frame_head(len(block), kind, flags | END_HEADERS, stream_id) + block)
            return
        out = self._out
        out.append(frame_head(size, kind, flags, stream_id) + block[:size])
        for start in range(size, len(block), size):
            part = block[start:start + size]
            last = start + size >= len(block)
            out.append(frame_head(len(part), CONTINUATION, END_HEADERS if last else 0, stream_id)
                       + part)

    def send_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]],
                     end_stream: bool) -> None:
        """A response head, a 1xx or trailers on `stream_id`."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.server_closed:
            raise StreamUnavailable(stream_id)
        block = self.encoder.encode(fields)
        self._block_frames_for(HEADERS, END_STREAM if end_stream else 0, stream_id, block)
        if end_stream:
            self._server_ended(stream)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        """One DATA frame; the caller keeps it within `send_window_of` and the frame size."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.server_closed:
            raise StreamUnavailable(stream_id)
        size = len(data)
        if size:
            if (size > stream.send_window or size > self.send_window
                    or size > self.max_outbound_frame_size):
                raise StreamUnavailable(stream_id)
            stream.send_window -= size
            self.send_window -= size
        self._out.append(frame_head(size, DATA, END_STREAM if end_stream else 0, stream_id))
        if size:
            self._out.append(data)
        if end_stream:
            self._server_ended(stream)

    def _server_ended(self, stream: H2Stream) -> None:
        stream.server_closed = True
        if stream.client_closed:
            self._close_stream(stream, False)

    def may_push(self, stream_id: int) -> bool:
        """Whether a push may be promised on `stream_id` now."""
        stream = self.streams.get(stream_id)
        return (self.enable_push and stream is not None and not stream.pushed
                and not stream.server_closed
                and self.open_pushed < self.remote_max_concurrent_streams)

    def push_promise(self, stream_id: int, fields: list[tuple[bytes, bytes]]) -> int:
        """PUSH_PROMISE on `stream_id`; returns the promised stream's id (reserved, local)."""
        if not self.may_push(stream_id):
            raise StreamUnavailable(stream_id)
        promised = self.next_push_id
        self.next_push_id += 2
        block = _u32(promised) + self.encoder.encode(fields)
        self._block_frames_for(PUSH_PROMISE, 0, stream_id, block)
        self.streams[promised] = H2Stream(promised, self.remote_initial_window, True)
        self.open_pushed += 1
        return promised

    def reset_stream(self, stream_id: int, code: int) -> None:
        """RST_STREAM: the stream is closed for both sides."""
        self._out.append(frame_head(4, RST_STREAM, 0, stream_id) + _u32(code))
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._close_stream(stream, True)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """`size` bytes of DATA were consumed: open the windows by that much again."""
        if size <= 0:
            return
        self.receive_window += size
        increment = _u32(size)
        self._out.append(frame_head(4, WINDOW_UPDATE, 0, 0) + increment)
        stream = self.streams.get(stream_id) if stream_id else None
        if stream is not None and not stream.client_closed:
            stream.receive_window += size
            self._out.append(frame_head(4, WINDOW_UPDATE, 0, stream_id) + increment)

    def goaway(self, code: int, last_stream_id: int = -1) -> None:
        """GOAWAY: streams above `last_stream_id` (default: the highest opened) are not served."""
        if last_stream_id < 0:
            last_stream_id = self.highest_inbound_stream_id
        self._out.append(frame_head(8, GOAWAY, 0, 0) + _u32(last_stream_id) + _u32(code))
