"""Content-Encoding: gzip and deflate bodies decoded, whole or chunk by chunk.

Only imported when a response carries Content-Encoding.  Codings we do not know
(br without a decoder, say) leave the body as it came: the caller can still read
`response.headers["content-encoding"]` and decode it.  Corrupt data raises
DecodingError (709).
"""

from __future__ import annotations

import zlib

from qactuar.client.errors import DecodingError


class _Identity:
    def decompress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Deflate:
    """'deflate' is zlib-wrapped by the RFC, raw in some servers: try both."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj()
        self._first = True

    def decompress(self, data: bytes) -> bytes:
        if self._first and data:
            self._first = False
            try:
                return self._decoder.decompress(data)
            except zlib.error:
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._decoder.decompress(data)

    def flush(self) -> bytes:
        return self._decoder.flush()


def _decoder_for(coding: str) -> object:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return _Deflate()
    return _Identity()


class Decoder:
    """Decodes a body encoded with the codings of a Content-Encoding value, in order."""

    def __init__(self, content_encoding: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        self._codings = ", ".join(codings)
        # Applied in the order listed, so undone in the reverse order.
        self._decoders = [_decoder_for(c) for c in reversed(codings) if c != "identity"]

    def decode(self, data: bytes) -> bytes:
        try:
            for decoder in self._decoders:
                data = decoder.decompress(data)  # type: ignore[attr-defined]
        except zlib.error as error:
            raise DecodingError(f"the body is not valid {self._codings} data: {error}") from None
        return data

    def flush(self) -> bytes:
        data = b""
        try:
            for decoder in self._decoders:
                data = decoder.decompress(data) + decoder.flush()  # type: ignore[attr-defined]
        except zlib.error as error:
            raise DecodingError(f"the body is not valid {self._codings} data: {error}") from None
        return data


def decode_all(content_encoding: str, data: bytes) -> bytes:
    """A whole body decoded."""
    decoder = Decoder(content_encoding)
    return decoder.decode(data) + decoder.flush()
