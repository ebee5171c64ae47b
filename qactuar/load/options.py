"""The command line of `qactuar load`, parsed and checked into `LoadOptions`.

Option names follow h2load's where they overlap (`-n -c -m -D -H -d -t
--h1 --warm-up-time`).  Anything wrong (an unknown option, a bad number, a URL
that cannot be loaded) raises `UsageError` with one line for the user; the
command turns it into exit status 2.  This module opens no connection.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from qactuar.load.target_file import FileRequest
from qactuar.load.targets import Target, parse_target

DEFAULT_TIMEOUT = 10.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class UsageError(Exception):
    """A bad option or URL; the message is the one line the user sees."""


@dataclass
class LoadOptions:
    """One load run, as the command line asked for it."""

    targets: list[Target]
    requests: int | None = None  # -n; None with a duration
    connections: int = 1  # -c
    streams: int = 1  # -m: streams per HTTP/2 connection, pipeline depth with --h1
    duration: float | None = None  # -D seconds
    warm_up: float = 0.0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    method: str | None = None
    force_h1: bool = False
    workers: int = 1  # -t
    rate: float | None = None  # requests per second, open model
    timeout: float = DEFAULT_TIMEOUT
    json_file: Path | None = None
    csv_file: Path | None = None
    html_file: Path | None = None
    fail_if: list[str] = field(default_factory=list)
    progress: bool | None = None  # None: on when stdout is a terminal
    ws_message_size: int = 16
    target_file: str | None = None  # --targets: its requests are in file_requests
    file_requests: list[FileRequest] = field(default_factory=list)
    scenario: Path | None = None  # --scenario: users run its `user(client)`

    def request_method(self) -> str:
        if self.method:
            return self.method
        return "POST" if self.body else "GET"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser(prog: str = "qactuar load") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Load an HTTP/1.1, HTTP/2 or WebSocket server "
                     "and report throughput and latency percentiles.")
    parser.add_argument("urls", nargs="*", metavar="URL",
                        help="http://, https://, ws:// or wss:// URL; several are used in "
                             "turn; URL@WEIGHT weights one")
    parser.add_argument("-i", "--targets", metavar="FILE", help="the requests from FILE, in "
                        "turn: blocks of 'METHOD URL', headers, '@BODYFILE' or '| body' "
                        "lines (a URL per line also works)")
    parser.add_argument("--scenario", metavar="FILE.py", help="each of -c users runs FILE's "
                        "'async def user(client)' in a loop (-n runs in all, or for -D)")
    parser.add_argument("-n", "--requests", type=int, help="requests in all (default 1 "
                        "without -D)")
    parser.add_argument("-c", "--clients", type=int, default=1, help="connections (default 1)")
    parser.add_argument("-m", "--max-concurrent-streams", type=int, default=1,
                        help="streams per HTTP/2 connection; pipeline depth with --h1; "
                        "messages in flight per WebSocket connection")
    parser.add_argument("-D", "--duration", help="run for this long (10, 10s, 500ms, 2m)")
    parser.add_argument("--warm-up-time", help="load this long before measuring (with -D)")
    parser.add_argument("-H", "--header", action="append", default=[],
                        help="'Name: value' added to every request (repeatable)")
    parser.add_argument("-d", "--data", metavar="FILE", help="request body from FILE "
                        "(the method becomes POST)")
    parser.add_argument("--method", help="request method (default GET, POST with -d)")
    parser.add_argument("--h1", action="store_true", help="HTTP/1.1 (default: HTTP/2, h2c "
                        "with prior knowledge for http://, ALPN for https://)")
    parser.add_argument("-t", "--threads", type=int, default=1,
                        help="worker processes, statistics merged (default 1)")
    parser.add_argument("--rate", type=float, help="open model: send R requests per second "
                        "whatever the answers do; latency counts from each send's due time")
    parser.add_argument("-T", "--timeout", help="a request unanswered this long is an error "
                        f"(default {DEFAULT_TIMEOUT:g}s)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--csv", metavar="FILE", help="write a row per request to FILE and a "
                        "per-second series to FILE's name + .seconds.csv")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    parser.add_argument("--fail-if", nargs="+", default=[], metavar="COND",
                        help="exit 1 when a condition holds: 'p99>50ms' 'errors>1%%' ...")
    parser.add_argument("--ws-message-size", type=int, default=16,
                        help="bytes per WebSocket message (default 16)")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="print a progress line each second (default: on a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def parse_duration(text: str, what: str) -> float:
    """Seconds from '10', '10s', '500ms', '2m' or '1h'."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"{what}: {text!r} is not a duration (10, 10s, 500ms, 2m)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_options(argv: list[str], prog: str = "qactuar load") -> LoadOptions:
    """The options `argv` asks for; UsageError (one line) when they cannot be run."""
    args = build_parser(prog).parse_args(argv)
    targets = [parse_target(url) for url in args.urls]
    file_requests = _request_sources(args, targets)
    if file_requests:
        from qactuar.load.target_file import origins

        targets = origins(file_requests)
    options = LoadOptions(targets=targets, connections=args.clients,
                          streams=args.max_concurrent_streams, force_h1=args.h1,
                          workers=args.threads, method=args.method, progress=args.progress,
                          fail_if=list(args.fail_if), ws_message_size=args.ws_message_size,
                          target_file=args.targets, file_requests=file_requests,
                          scenario=Path(args.scenario) if args.scenario else None)
    _positive("-c", options.connections)
    _positive("-m", options.streams)
    _positive("-t", options.workers)
    if args.requests is not None:
        _positive("-n", args.requests)
        options.requests = args.requests
    if args.duration is not None:
        options.duration = parse_duration(args.duration, "-D")
        if options.duration <= 0:
            raise UsageError("-D must be more than 0")
    if args.warm_up_time is not None:
        options.warm_up = parse_duration(args.warm_up_time, "--warm-up-time")
    if args.timeout is not None:
        options.timeout = parse_duration(args.timeout, "-T")
        if options.timeout <= 0:
            raise UsageError("-T must be more than 0")
    if options.requests is not None and options.duration is not None:
        raise UsageError("-n and -D cannot both be given: one ends the run")
    if options.requests is None and options.duration is None:
        options.requests = 1
    if args.rate is not None:
        if not args.rate > 0:
            raise UsageError("--rate must be more than 0 requests per second")
        options.rate = args.rate
    if options.workers > options.connections:
        raise UsageError(f"-t {options.workers} needs at least as many connections (-c)")
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip() or any(c in header for c in "\r\n"):
            raise UsageError(f"-H {header!r}: expected 'Name: value'")
        options.headers.append((name.strip(), value.strip()))
    if args.data is not None:
        try:
            options.body = Path(args.data).read_bytes()
        except OSError as exc:
            raise UsageError(f"-d {args.data}: {exc.strerror or exc}") from None
    if options.ws_message_size < 0:
        raise UsageError("--ws-message-size must be 0 or more")
    for name in ("json", "csv", "html"):
        value = getattr(args, name)
        if value is not None:
            setattr(options, f"{name}_file", Path(value))
    kinds = {target.kind for target in targets}
    if len(kinds) > 1:
        raise UsageError("all URLs of one run must use the same kind of scheme "
                         "(http(s) or ws(s))")
    if options.fail_if:
        from qactuar.load.fail_if import parse_conditions

        parse_conditions(options.fail_if)  # raises UsageError for a bad one
    return options


def _request_sources(args: argparse.Namespace, targets: list[Target]) -> list[FileRequest]:
    """Check that the run has one source of requests: URLs, --targets or --scenario (with
    at most a base URL); the target file's requests when it is the source."""
    if args.targets is not None and args.scenario is not None:
        raise UsageError("--targets and --scenario cannot both be given")
    if args.scenario is not None:
        if len(targets) > 1 or (targets and targets[0].kind != "http"):
            raise UsageError("--scenario takes at most one http(s):// URL, the base of the "
                             "scenario's relative URLs")
        for flag, given in (("--rate", args.rate is not None), ("-d", args.data is not None),
                            ("--method", args.method is not None),
                            ("-m", args.max_concurrent_streams != 1)):
            if given:
                raise UsageError(f"{flag} cannot be used with --scenario (the scenario "
                                 "makes its own requests)")
        return []
    if args.targets is not None:
        if targets:
            raise UsageError("give URLs or --targets FILE, not both")
        if args.data is not None or args.method is not None:
            raise UsageError("-d and --method cannot be used with --targets (each request "
                             "of the file has its own)")
        from qactuar.load.target_file import read_target_file

        return read_target_file(args.targets)
    if not targets:
        raise UsageError("give a URL to load (or --targets FILE, or --scenario FILE.py)")
    return []


def _positive(flag: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{flag} must be at least 1, not {value}")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
