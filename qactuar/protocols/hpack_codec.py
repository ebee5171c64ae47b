# cython: annotation_typing=False
"""HPACK for one HTTP/2 connection, cheaper than `hpack`'s own for what a server sees.

`DynamicTableEncoder` compresses the header blocks we send with both tables
and Huffman coding, as `hpack`'s encoder does, but finds a field in its
dynamic table with one dict look-up (not a scan of the table per field) and
takes a field's literal encodings from a process-wide memo (they depend on the
field alone) instead of Huffman-coding it per response; and it remembers the
last blocks it made that left its table unchanged: an app answering with the
same header fields gets the same bytes, without encoding them again.
`BlockCachingDecoder` is `hpack`'s decoder that remembers the last header
blocks it decoded while its dynamic table stays unchanged: a client repeating
a request sends the same bytes, referring to the same table entries, and gets
the same fields without decoding them again (the first 8 small blocks since
the table last changed).  `h2` calls both through
`H2Connection.encoder` / `.decoder`.  This module knows nothing of frames,
streams or ASGI.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hpack import Decoder
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
# Fields that must never be added to a compression table along the way (RFC 7541 7.1.3).
_NEVER_INDEXED = frozenset({b"authorization", b"proxy-authorization", b"set-cookie",
                            b"cookie"})
# The encodings of fields, process-wide: they depend on the field alone.  Cleared
# when full, so that ever new values (a Date each second) cannot grow it.
_FIELD_FORMS: dict[tuple[bytes, bytes], tuple[bytes, bytes | None]] = {}
_FIELD_FORMS_LIMIT = 4096
_FIELD_VALUE_LIMIT = 512  # longer values are encoded each time, not kept
MAX_TABLE_SIZE = 4096  # the most dynamic table we keep for our responses, per connection
_INDEXED = [bytes((0x80 | index,)) for index in range(127)]  # indexed fields, 1 byte


def _integer(value: int, prefix_bits: int, first_byte: int) -> bytes:
    """An HPACK integer (RFC 7541 5.1) whose first byte carries `first_byte`'s high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = bytearray((first_byte | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes) -> bytes:
    """An HPACK string literal (RFC 7541 5.2), Huffman-coded when that is shorter."""
    coded = _HUFFMAN.encode(data)
    if len(coded) < len(data):
        return _integer(len(coded), 7, 0x80) + coded
    return _integer(len(data), 7, 0x00) + data


def _field_forms(name: bytes, value: bytes) -> tuple[bytes, bytes | None]:
    """A field's two encodings: not added to the dynamic table (the static table's
    index where it holds the whole field), and added to it (None where it must not be)."""
    static = HeaderTable.STATIC_TABLE_MAPPING.get(name)
    never = name in _NEVER_INDEXED
    if static is not None:
        index = static[1].get(value)
        if index is not None and not never:
            return _integer(index, 7, 0x80), None  # indexed field (RFC 7541 6.1)
        literal = _string(value)
        # Literal with an indexed name: without indexing or never indexed (6.2.2, 6.2.3),
        # or with incremental indexing (6.2.1).
        plain = _integer(static[0], 4, 0x10 if never else 0x00) + literal
        return plain, None if never else _integer(static[0], 6, 0x40) + literal
    literals = _string(name) + _string(value)
    return (b"\x10" if never else b"\x00") + literals, None if never else b"\x40" + literals


def field_forms(field: tuple[bytes, bytes]) -> tuple[bytes, bytes | None]:
    """`_field_forms`, remembered for short values."""
    forms = _FIELD_FORMS.get(field)
    if forms is None:
        name, value = field
        forms = _field_forms(name, value)
        if len(value) <= _FIELD_VALUE_LIMIT:
            if len(_FIELD_FORMS) >= _FIELD_FORMS_LIMIT:
                _FIELD_FORMS.clear()
            _FIELD_FORMS[name, value] = forms
    return forms


class DynamicTableEncoder:
    """The encoder `h2` calls for the header blocks we send (responses, trailers, pushes).

    A field already in our dynamic table is sent as its index; a new one is added
    (unless it is sensitive or large) and evicted first-in first-out, as RFC 7541
    4.4 has the peer's decoder do: the index of each entry follows from the order
    of insertion, found by one dict look-up instead of a search of the table.
    """

    BLOCKS_LIMIT = 16  # blocks remembered while the table is unchanged
    BLOCK_SIZE_LIMIT = 512  # bytes of a remembered block

    def __init__(self) -> None:
        self._table_size = 4096  # the maximum both sides assume until SETTINGS say otherwise
        self._size_changed = False
        self._entries: dict[tuple[bytes, bytes], int] = {}  # field -> its insertion number
        # (field, size), oldest first
        self._order: deque[tuple[tuple[bytes, bytes], int]] = deque()
        self._used = 0
        self._inserted = 0
        # Blocks made while the table stayed as it is now: header list -> block.
        self._blocks: dict[tuple[tuple[bytes, bytes], ...], bytes] = {}

    @property
    def header_table_size(self) -> int:
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, size: int) -> None:
        # The peer's SETTINGS_HEADER_TABLE_SIZE: our table takes that size, up to
        # 4 KiB (an encoder may use less than its peer allows, RFC 7541 4.2: a client
        # must not make us hold megabytes per connection), announced at the start
        # of the next block (RFC 7541 4.2, 6.3).
        size = min(size, MAX_TABLE_SIZE)
        if size != self._table_size:
            self._table_size = size
            self._size_changed = True

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        key = None
        size_changed = self._size_changed
        if not size_changed:  # (a size update must start the next block)
            try:
                key = tuple(headers)
                block = self._blocks.get(key)
            except TypeError:  # a field that is not a pair of bytes: encoded, not remembered
                key = None
                block = None
            if block is not None:
                return block
        inserted = self._inserted
        block = self._encode(headers)
        blocks = self._blocks
        if inserted != self._inserted or size_changed:
            blocks.clear()  # the table changed: what was made before no longer holds
        elif (key is not None and len(blocks) < self.BLOCKS_LIMIT
              and len(block) <= self.BLOCK_SIZE_LIMIT):
            blocks[key] = block
        return block

    def _encode(self, headers: Any) -> bytes:
        parts = []
        if self._size_changed:
            # Empty the table (size 0), then take the new size: one way to honour
            # every change since the last block, whatever their order (RFC 7541 4.2).
            self._size_changed = False
            parts += (b"\x20", _integer(self._table_size, 5, 0x20))
            self._entries.clear()
            self._order.clear()
            self._used = 0
        entries = self._entries
        room = self._table_size >> 2  # larger fields are not worth a place in the table
        for field in headers:
            number = entries.get(field)
            if number is not None:
                index = 61 + self._inserted - number  # the newest entry is 62
                parts.append(_INDEXED[index] if index < 127 else _integer(index, 7, 0x80))
                continue
            plain, indexing = field_forms(field)
            if indexing is not None and (size := len(field[0]) + len(field[1]) + 32) <= room:
                parts.append(indexing)
                self._insert(field, size)
            else:
                parts.append(plain)
        return b"".join(parts)

    def _insert(self, field: tuple[bytes, bytes], size: int) -> None:
        order = self._order
        entries = self._entries
        self._used += size
        while self._used > self._table_size:
            oldest, oldest_size = order.popleft()
            del entries[oldest]
            self._used -= oldest_size
        order.append((field, size))
        entries[field] = self._inserted
        self._inserted += 1


class BlockCachingDecoder(Decoder):
    """`hpack.Decoder`, remembering decoded blocks while the dynamic table is unchanged.

    Anything that changes the table (a literal with incremental indexing, a size
    update) or a decoding limit forgets every remembered block; a block whose
    decoding changed the table is not remembered.
    """

    BLOCKS_LIMIT = 8  # blocks remembered
    BLOCK_SIZE_LIMIT = 512  # bytes of a remembered block
    FIELDS_SIZE_LIMIT = 2048  # bytes of names and values of a remembered block

    def __init__(self) -> None:
        self._blocks: dict[bytes, tuple[Any, ...]] = {}
        self._generation = 0
        self._max_list = 0
        self._max_table = 0
        super().__init__()

    def _changed(self) -> None:
        self._generation += 1
        self._blocks.clear()

    @property  # type: ignore[override]
    def max_header_list_size(self) -> int:
        return self._max_list

    @max_header_list_size.setter
    def max_header_list_size(self, size: int) -> None:
        self._max_list = size
        self._changed()

    @property  # type: ignore[override]
    def max_allowed_table_size(self) -> int:
        return self._max_table

    @max_allowed_table_size.setter
    def max_allowed_table_size(self, size: int) -> None:
        self._max_table = size
        self._changed()

    def _decode_literal_index(self, data: Any) -> Any:
        self._changed()
        return super()._decode_literal_index(data)

    def _update_encoding_context(self, data: Any) -> int:
        self._changed()
        return super()._update_encoding_context(data)

    def decode(self, data: bytes, raw: bool = False) -> Any:
        if not raw:
            return super().decode(data, raw)
        blocks = self._blocks
        fields = blocks.get(data)
        if fields is not None:
            return list(fields)  # a copy: whoever gets it may change it
        generation = self._generation
        fields = super().decode(data, raw)
        if (generation == self._generation and len(data) <= self.BLOCK_SIZE_LIMIT
                and len(blocks) < self.BLOCKS_LIMIT
                and sum(len(name) + len(value) for name, value in fields)
                <= self.FIELDS_SIZE_LIMIT):
            blocks[bytes(data)] = tuple(fields)
        return fields
