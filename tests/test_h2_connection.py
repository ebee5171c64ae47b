"""H2Connection and the HPACK block memo on their own: frames in, calls and frames out."""

from __future__ import annotations

from typing import Any

from hpack import Decoder, Encoder
from hyperframe.frame import DataFrame, Frame, HeadersFrame, RstStreamFrame, SettingsFrame

from qactuar.protocols.h2_connection import PREFACE, STREAM_CLOSED, H2Connection
from qactuar.protocols.hpack_codec import DynamicTableEncoder

GET = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]


class Recorder:
    """A handler that notes every call H2Connection makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, *args))


def frames_of(data: bytes) -> list[Frame]:
    frames = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9:9 + length]))
        frames.append(frame)
        data = data[9 + length:]
    return frames


def test_data_after_end_stream_resets_that_stream_and_tells_the_handler() -> None:
    handler = Recorder()
    conn = H2Connection(handler, 8192, 100, False)
    conn.initiate_connection()
    conn.data_to_send()
    block = Encoder().encode(GET)
    conn.receive(PREFACE + SettingsFrame(0).serialize()
                 + HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]).serialize()
                 + DataFrame(1, b"late").serialize())
    names = [call[0] for call in handler.calls]
    assert names == ["on_settings", "on_request", "on_stream_error"]
    assert handler.calls[1][1:] == (1, GET, True)
    resets = [frame for frame in frames_of(conn.data_to_send())
              if isinstance(frame, RstStreamFrame)]
    assert [(frame.stream_id, frame.error_code) for frame in resets] == [(1, STREAM_CLOSED)]


def test_a_remembered_block_gives_way_to_a_table_size_update() -> None:
    encoder = DynamicTableEncoder()
    decoder = Decoder()
    fields = [(b":status", b"200"), (b"content-type", b"text/plain")]
    for _ in range(3):  # the first inserts, the next two are the remembered block
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
    assert encoder.encode(fields) is encoder.encode(fields)
    encoder.header_table_size = 0  # the client's SETTINGS_HEADER_TABLE_SIZE
    block = encoder.encode(fields)
    assert block[0] & 0xE0 == 0x20  # a dynamic table size update starts the block
    decoder.header_table_size = 0
    assert decoder.decode(block, raw=True) == fields
