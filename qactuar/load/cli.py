"""`qactuar load`: parse the options, pick the protocol, run, report, set the exit status.

Exit status: 0 when every request got an answer below 400 and no `--fail-if`
condition holds; 1 when requests errored or failed, `--rate` left requests
unsent, or a `--fail-if` condition holds; 2 for a bad option or URL (one line
on stderr); 130 after Ctrl-C (the report so far is printed first).
`qactuar load merge A.json B.json ...` combines the JSON files of several runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from typing import Any

from qactuar.load.options import LoadOptions, UsageError, parse_options
from qactuar.load.report import format_report, progress_line
from qactuar.load.stats import RunStats
from qactuar.load.targets import Target


def choose_protocol(options: LoadOptions) -> str:
    """'ws' for ws(s)://, 'h1' with --h1, else 'h2' (h2c for http://, ALPN for https://:
    HTTP/1.1 when the server does not offer h2)."""
    if options.scenario is not None:
        return "scenario"
    first = options.targets[0]
    if first.kind == "ws":
        return "ws"
    if options.force_h1:
        return "h1"
    if first.tls:
        return "h2" if alpn_of(first) in ("h2", None) else "h1"
    return "h2"


def alpn_of(target: Target) -> str | None:
    """The protocol the server picks by ALPN from h2 and http/1.1 (None: no answer)."""
    from qactuar.load.runner import client_tls_context

    context = client_tls_context(["h2", "http/1.1"])
    try:
        with socket.create_connection((target.host, target.port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=target.host) as tls:
            return tls.selected_alpn_protocol() or "http/1.1"
    except (OSError, ssl.SSLError):
        return None


def _event_loop_runner() -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def run_share(options: LoadOptions, protocol: str, connections: int, requests: int | None,
              rate: float | None, show_progress: bool) -> tuple[RunStats, bool]:
    """Run one process's share; its statistics and whether Ctrl-C ended it."""
    from qactuar.load.runner import Run

    def progress(stats: RunStats, second: int) -> None:
        sys.stdout.write("\r" + progress_line(stats, second) + "\x1b[K")
        sys.stdout.flush()

    async def main() -> tuple[RunStats, bool]:
        run: Any
        if protocol == "scenario":
            from qactuar.load.scenario import ScenarioRun

            run = ScenarioRun(options, connections, requests,
                              progress if show_progress else None)
        else:
            run = Run(options, connections, requests, rate, protocol,
                      progress if show_progress else None)
        stats = await run.execute()
        if show_progress:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
        return stats, run.interrupted

    return _event_loop_runner()(main())


def execute(options: LoadOptions) -> tuple[RunStats, bool, str]:
    """Run the whole load (in -t processes when asked); merged statistics, interrupted,
    protocol."""
    from qactuar.load.workers import run_workers, shares

    protocol = choose_protocol(options)
    show_progress = options.progress if options.progress is not None else sys.stdout.isatty()
    if options.workers == 1:
        stats, interrupted = run_share(options, protocol, options.connections,
                                       options.requests, options.rate, show_progress)
        return stats, interrupted, protocol
    connection_shares = shares(options.connections, options.workers)
    request_shares = (shares(options.requests, options.workers) if options.requests
                      else [None] * options.workers)

    def work(index: int) -> tuple[RunStats, bool]:
        rate = options.rate / options.workers if options.rate else None
        return run_share(options, protocol, connection_shares[index], request_shares[index],
                         rate, show_progress and index == 0)

    results, interrupted = run_workers(options.workers, work)
    merged = results[0]
    for other in results[1:]:
        if merged.rows is not None and other.rows is not None:
            merged.rows += other.rows
        merged.merge(other)
    return merged, interrupted, protocol


def exit_status(options: LoadOptions, stats: RunStats, interrupted: bool) -> tuple[int, list[str]]:
    """The exit status and the reasons for it."""
    from qactuar.load.fail_if import failing

    reasons = []
    if stats.errored:
        reasons.append(f"{stats.errored} requests errored")
    if stats.failed:
        reasons.append(f"{stats.failed} requests failed (status 400 or above)")
    if stats.unsent:
        reasons.append(f"{stats.unsent} requests due were never sent")
    if (options.requests is not None and options.scenario is None
            and stats.started < options.requests and not interrupted):
        reasons.append(f"only {stats.started} of {options.requests} requests were started")
    reasons += [f"--fail-if {text}" for text in failing(options.fail_if, stats)]
    if interrupted:
        return 130, reasons
    return (1 if reasons else 0), reasons


def run_document(options: LoadOptions, protocol: str, interrupted: bool) -> dict[str, Any]:
    return {"urls": [target.url for target in options.targets], "protocol": protocol,
            "targets_file": options.target_file,
            "scenario": str(options.scenario) if options.scenario else None,
            "connections": options.connections, "streams": options.streams,
            "requests": options.requests, "duration_s": options.duration,
            "warm_up_s": options.warm_up, "rate": options.rate, "workers": options.workers,
            "interrupted": interrupted}


def load_main(argv: list[str], prog: str = "qactuar load") -> int:
    """The whole command; its exit status."""
    if argv[:1] == ["merge"]:
        from qactuar.load.merge import merge_main

        return merge_main(argv[1:])
    try:
        options = parse_options(argv, prog)
        if options.scenario is not None:
            from qactuar.load.scenario import load_scenario

            load_scenario(options.scenario)  # a file that cannot run is a usage error
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    stats, interrupted, protocol = execute(options)
    total = options.requests if options.scenario is None else None  # -n counts runs there
    print(format_report(stats, total, options.workers, options.rate, protocol, interrupted))
    write_outputs(options, stats, run_document(options, protocol, interrupted))
    status, reasons = exit_status(options, stats, interrupted)
    for reason in reasons:
        print(f"fail: {reason}")
    return status


def write_outputs(options: LoadOptions, stats: RunStats, run: dict[str, Any]) -> None:
    from qactuar.load.export import write_csv, write_json

    try:
        if options.json_file is not None:
            write_json(options.json_file, stats, run)
        if options.csv_file is not None:
            write_csv(options.csv_file, stats)
        if options.html_file is not None:
            from qactuar.load.html_report import write_html

            write_html(options.html_file, stats, run)
    except OSError as exc:
        print(f"qactuar load: error: cannot write {exc.filename}: {exc.strerror}",
              file=sys.stderr)


def main(argv: list[str] | None = None, prog: str = "qactuar load") -> None:
    with contextlib.suppress(BrokenPipeError):
        try:
            status = load_main(sys.argv[1:] if argv is None else argv, prog)
        except KeyboardInterrupt:  # Ctrl-C before the run's own handler was in place
            print(f"{prog}: interrupted before the run started", file=sys.stderr)
            status = 130
        sys.exit(status)
