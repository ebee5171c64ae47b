"""multipart/form-data bodies (RFC 7578) for `files=` uploads.

Fields and in-memory files become one bytes body; open files are streamed in
chunks (their size is known, so the request still carries Content-Length) and
never read into memory whole.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import AsyncIterator
from typing import Any

CHUNK_SIZE = 256 * 1024


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace(
        "\n", "%0A")


def _part_head(boundary: bytes, name: str, filename: str | None,
               content_type: str | None) -> bytes:
    disposition = f'form-data; name="{_quote(name)}"'
    if filename is not None:
        disposition += f'; filename="{_quote(filename)}"'
    head = b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
    if content_type:
        head += b"Content-Type: " + content_type.encode() + b"\r\n"
    return head + b"\r\n"


def _file_size(handle: Any) -> int | None:
    try:
        return os.fstat(handle.fileno()).st_size - handle.tell()
    except (AttributeError, OSError, ValueError):
        return None


class MultipartStream:
    """The parts, in order: bytes, or open files read CHUNK_SIZE at a time."""

    def __init__(self, pieces: list[Any], length: int) -> None:
        self.pieces = pieces
        self.length = length

    async def __aiter__(self) -> AsyncIterator[bytes]:  # type: ignore[misc]
        for piece in self.pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            while True:
                chunk = piece.read(CHUNK_SIZE)
                if not chunk:
                    break
                yield chunk.encode() if isinstance(chunk, str) else chunk


def encode_multipart(data: Any, files: Any) -> tuple[bytes, bytes | None, Any]:
    """(Content-Type, body bytes or None, MultipartStream or None)."""
    boundary = os.urandom(16).hex().encode()
    pieces: list[Any] = []
    for name, value in (data or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            pieces.append(_part_head(boundary, str(name), None, None))
            pieces.append(item if isinstance(item, bytes) else str(item).encode())
            pieces.append(b"\r\n")
    items = files.items() if hasattr(files, "items") else files
    for name, value in items:
        filename = content_type = None
        if isinstance(value, tuple):
            filename, content, *rest = value
            content_type = rest[0] if rest else None
        else:
            content = value
            path = getattr(content, "name", None)
            filename = os.path.basename(path) if isinstance(path, str) else name
        if content_type is None and filename:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        pieces.append(_part_head(boundary, str(name), filename, content_type))
        pieces.append(content.encode() if isinstance(content, str) else content)
        pieces.append(b"\r\n")
    pieces.append(b"--" + boundary + b"--\r\n")
    content_type_field = b"multipart/form-data; boundary=" + boundary
    if all(isinstance(piece, bytes) for piece in pieces):
        return content_type_field, b"".join(pieces), None
    length = 0
    for piece in pieces:
        size = len(piece) if isinstance(piece, bytes) else _file_size(piece)
        if size is None:
            raise TypeError("files: a file-like object must be a real open file "
                            "(or pass its bytes)")
        length += size
    return content_type_field, None, MultipartStream(pieces, length)
