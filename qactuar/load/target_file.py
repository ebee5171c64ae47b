"""`--targets FILE` (`-i FILE`): the requests of a run, read from a file, one block each.

    # a comment
    GET http://127.0.0.1:8000/hello
    accept: text/plain

    POST http://127.0.0.1:8000/echo
    content-type: application/json
    @body.json

    PUT http://127.0.0.1:8000/echo
    | an inline body,
    | two lines

    http://127.0.0.1:8000/a

A block is a request line (`METHOD URL`, or a URL alone for GET: h2load's
`-i` file of URIs is a target file), then any `Name: value` header lines, then
at most one body: `@PATH` (a file, relative to the target file's folder) or
`| text` lines (joined with newlines).  Blank lines and `#` lines are ignored.
Anything else raises the options' UsageError naming FILE:LINE.  Nothing here
opens a connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from qactuar.load.targets import Target, parse_target

_REQUEST_LINE = re.compile(r"^(?:([A-Z]+)\s+)?([a-z]+://\S*)\s*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@dataclass(frozen=True)
class FileRequest:
    """One request of a target file."""

    method: str
    target: Target
    headers: tuple[tuple[str, str], ...]
    body: bytes
    line: int  # where its block starts


class _Block:
    def __init__(self, method: str, target: Target, line: int) -> None:
        self.method = method
        self.target = target
        self.line = line
        self.headers: list[tuple[str, str]] = []
        self.body: bytes | None = None
        self.inline: list[str] | None = None

    def request(self) -> FileRequest:
        body = self.body if self.body is not None else (
            "\n".join(self.inline).encode() if self.inline is not None else b"")
        return FileRequest(self.method, self.target, tuple(self.headers), body, self.line)


def read_target_file(name: str) -> list[FileRequest]:
    """The requests of target file `name`, in order; UsageError 'FILE:LINE: why'."""
    from qactuar.load.options import UsageError

    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--targets {name}: {getattr(exc, 'strerror', None) or exc}") from None
    requests: list[FileRequest] = []
    block: _Block | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()

        def error(why: str, number: int = number) -> UsageError:
            return UsageError(f"{name}:{number}: {why}")

        if not line or line.startswith("#"):
            if not line and block is not None:
                requests.append(block.request())
                block = None
            continue
        match = _REQUEST_LINE.match(line)
        if match is not None:
            if block is not None:
                requests.append(block.request())
            block = _Block(*_request_line(match, name, number), number)
            continue
        if block is None:
            raise error(f"expected a request line ('METHOD URL' or a URL), not {line!r}")
        if line.startswith("|"):
            if block.body is not None:
                raise error("a block has one body: '@FILE' or '| text' lines, not both")
            block.inline = [*(block.inline or []), raw.strip()[2:] if len(line) > 1 else ""]
        elif line.startswith("@"):
            if block.body is not None or block.inline is not None:
                raise error("a block has one body: '@FILE' or '| text' lines, not both")
            body_path = path.parent / line[1:].strip()
            try:
                block.body = body_path.read_bytes()
            except OSError as exc:
                raise error(f"body file {line[1:].strip()}: {exc.strerror or exc}") from None
        else:
            if block.body is not None or block.inline is not None:
                raise error("headers come before the body")
            header_name, colon, value = line.partition(":")
            if not colon or not _HEADER_NAME.match(header_name):
                raise error(f"expected 'Name: value', '@FILE', '| text' or a request line, "
                            f"not {line!r}")
            block.headers.append((header_name, value.strip()))
    if block is not None:
        requests.append(block.request())
    if not requests:
        raise UsageError(f"--targets {name}: no request in the file")
    return requests


def _request_line(match: re.Match[str], name: str, number: int) -> tuple[str, Target]:
    from qactuar.load.options import UsageError

    method = match.group(1) or "GET"
    try:
        target = parse_target(match.group(2))
    except UsageError as exc:
        raise UsageError(f"{name}:{number}: {exc}") from None
    why = ("a target file holds http:// and https:// requests" if target.kind != "http" else
           "repeat a block to weight it (URL@WEIGHT is for the command line)"
           if target.weight != 1 else
           "HEAD is not supported in a target file" if method == "HEAD" else "")
    if why:
        raise UsageError(f"{name}:{number}: {why}")
    return method, target


def origins(requests: list[FileRequest]) -> list[Target]:
    """One Target per origin of the file, weighted by how many of its requests go there (the
    runner spreads connections over them by weight)."""
    counts: dict[tuple[str, str, int], int] = {}
    first: dict[tuple[str, str, int], Target] = {}
    for request in requests:
        origin = request.target.origin
        counts[origin] = counts.get(origin, 0) + 1
        first.setdefault(origin, request.target)
    return [Target(first[o].url, first[o].scheme, first[o].host, first[o].port, first[o].path,
                   counts[o]) for o in first]
