"""The frames of the hot path, read and written here instead of by `h2`.

`H2Connection.send_headers` and `.send_data` build frame objects, flag sets,
header-validation flags and per-field conversions, then serialise them; its
`receive_data` parses every frame into objects, formats each for a trace log
and builds events.  `send_headers`/`send_data` here do what h2 does for a
server's final response, trailers and body on an open connection, and
`receive_request_headers` what it does for a HEADERS frame opening a new
stream: the same stream and connection state-machine transitions (so h2
still knows each stream's state and who closed it), the same flow-control
accounting and the same outbound buffer (so frames keep their order with
h2's own), with frame bytes packed and read directly.  Anything else goes
through h2 itself.  They raise what h2 raises (`ProtocolError`, `KeyError`
for a stream h2 has forgotten).

This module is the only one that reaches into h2's internals (`streams`,
`state_machine`, the flow-control windows, `_data_to_send`,
`_begin_new_stream`, `_decode_headers`, `_terminate_connection`, the HPACK
encoder and decoder it is built with); `http2.py` uses h2's public methods
and the functions here.  Written against h2 4.4; pyproject.toml pins h2 to
4.4.x.
"""

from __future__ import annotations

import struct
from typing import Any

import h2.config
import h2.connection
import h2.exceptions
import h2.settings
import h2.stream

from qactuar.protocols.hpack_codec import BlockCachingDecoder, DynamicTableEncoder

FRAME_HEAD = struct.Struct(">BHBBL")  # length (24 bits as 8 + 16), type, flags, stream id
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4
SERVER_OPEN = h2.connection.ConnectionState.SERVER_OPEN
# Connection states in which a client's HEADERS may open a stream (IDLE: the first one).
OPENING_STATES = frozenset({h2.connection.ConnectionState.IDLE, SERVER_OPEN})
_CONNECTION_RECV_HEADERS = h2.connection.ConnectionInputs.RECV_HEADERS
_SEND_HEADERS = h2.stream.StreamInputs.SEND_HEADERS
_SEND_DATA = h2.stream.StreamInputs.SEND_DATA
_SEND_END_STREAM = h2.stream.StreamInputs.SEND_END_STREAM
_RECV_HEADERS = h2.stream.StreamInputs.RECV_HEADERS
_RECV_END_STREAM = h2.stream.StreamInputs.RECV_END_STREAM


def server_connection(max_header_size: int, max_concurrent_streams: int,
                      connect_protocol: bool) -> h2.connection.H2Connection:
    """A server-side H2Connection with our HPACK codecs and local SETTINGS.

    Outbound headers are checked by HTTPStream and lower-cased and filtered
    by h2_fields.response_fields already: h2 need not check them again (a
    third of its time per response).  Inbound ones are checked by
    h2_fields.read_request_head, in one pass.
    """
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding=None, validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=False,
        normalize_inbound_headers=False))
    conn.encoder = DynamicTableEncoder()  # type: ignore[assignment]
    decoder = BlockCachingDecoder()
    decoder.max_header_list_size = max_header_size  # what SETTINGS advertise
    conn.decoder = decoder
    conn.local_settings = h2.settings.Settings(client=False, initial_values={
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
        h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_size,
        # RFC 8441: WebSocket over a stream, by extended CONNECT.
        h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: int(connect_protocol),
    })
    return conn


def may_open_stream(conn: Any) -> bool:
    """Whether the connection is in a state where a client's HEADERS may open a stream."""
    return conn.state_machine.state in OPENING_STATES


def send_window(conn: Any, stream_id: int) -> int:
    """How many body bytes may go out on `stream_id` now (stream and connection windows).

    Raises KeyError for a stream h2 has forgotten."""
    return min(conn.outbound_flow_control_window,
               conn.streams[stream_id].outbound_flow_control_window)


def _head(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return FRAME_HEAD.pack(length >> 16, length & 0xFFFF, kind, flags, stream_id)


def send_headers(conn: Any, stream_id: int, fields: list[tuple[bytes, bytes]],
                 end_stream: bool = False) -> None:
    """A final response head or trailers (never a 1xx) on `stream_id`."""
    if conn.state_machine.state is not SERVER_OPEN:
        conn.send_headers(stream_id, fields, end_stream=end_stream)  # h2 says what is wrong
        return
    machine = conn.streams[stream_id].state_machine
    # The transitions come first, as in h2: encoding changes the HPACK context for good.
    machine.process_input(_SEND_HEADERS)
    if machine.trailers_sent and not end_stream:  # h2's own rule, checked before encoding
        raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set.")
    flags = _END_HEADERS
    if end_stream:
        machine.process_input(_SEND_END_STREAM)
        flags |= _END_STREAM
    block = conn.encoder.encode(fields)
    size = conn.max_outbound_frame_size
    if len(block) <= size:
        conn._data_to_send += _head(len(block), _HEADERS, flags, stream_id) + block
        return
    # END_STREAM on the HEADERS frame, END_HEADERS on the last CONTINUATION (RFC 9113 6.10).
    frames = [_head(size, _HEADERS, flags & _END_STREAM, stream_id), block[:size]]
    for start in range(size, len(block), size):
        part = block[start:start + size]
        last = start + size >= len(block)
        frames += (_head(len(part), _CONTINUATION, _END_HEADERS if last else 0, stream_id), part)
    conn._data_to_send += b"".join(frames)


def send_data(conn: Any, stream_id: int, data: bytes, end_stream: bool = False) -> None:
    """One DATA frame; the caller keeps it within the windows and the frame size."""
    if conn.state_machine.state is not SERVER_OPEN:
        conn.send_data(stream_id, data, end_stream=end_stream)
        return
    stream = conn.streams[stream_id]
    size = len(data)
    if size and (size > stream.outbound_flow_control_window
                 or size > conn.outbound_flow_control_window
                 or size > conn.max_outbound_frame_size):
        raise h2.exceptions.FlowControlError(f"{size} bytes do not fit the window or frame")
    machine = stream.state_machine
    machine.process_input(_SEND_DATA)
    if end_stream:
        machine.process_input(_SEND_END_STREAM)
    stream.outbound_flow_control_window -= size
    conn.outbound_flow_control_window -= size
    conn._data_to_send += _head(size, _DATA, _END_STREAM if end_stream else 0, stream_id) + data


def receive_request_headers(conn: Any, stream_id: int, end_stream: bool,
                            block: bytes) -> list[tuple[bytes, bytes]]:
    """A complete HEADERS frame that opens the new client stream `stream_id`.

    What h2's `receive_data` does with it, without parsing it into frame objects,
    formatting it for a trace log, counting open streams when the limit is far,
    or building the events: decode the block, open the stream (`stream_id` must be
    odd and above every earlier one: the caller checks), the stream's transitions
    and its Content-Length.  Returns the header fields.  On a protocol error h2's
    GOAWAY is queued, as h2 does, and the error raised.
    """
    try:
        if len(conn.streams) >= conn.local_settings.max_concurrent_streams:
            limit = conn.local_settings.max_concurrent_streams
            if conn.open_inbound_streams + 1 > limit:  # (this count drops closed streams)
                raise h2.exceptions.TooManyStreamsError(f"Max inbound streams is {limit}")
        fields = h2.connection._decode_headers(conn.decoder, block)
        if conn.state_machine.state is not SERVER_OPEN:
            conn.state_machine.process_input(_CONNECTION_RECV_HEADERS)
        stream = conn._begin_new_stream(stream_id, h2.connection.AllowedStreamIDs.ODD)
        machine = stream.state_machine
        machine.process_input(_RECV_HEADERS)
        if end_stream:
            machine.process_input(_RECV_END_STREAM)
        stream._initialize_content_length(fields)
    except h2.exceptions.ProtocolError as exc:
        conn._terminate_connection(exc.error_code)
        raise
    return fields
