"""`python -m benchmarks`: run the scenarios against the servers and report.

Order: for each scenario, for each round, every server once (A B C A B C ...),
so machine noise spreads over all servers alike. Exit status 1 when any server
failed any scenario (did not start, answered wrongly, non-2xx, socket errors),
130 on ctrl-C (servers are stopped either way).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from subprocess import SubprocessError

from benchmarks import before, environment, pythons, servers, wrk
from benchmarks.measure import MEASUREMENTS, Settings
from benchmarks.process import ServerFailed, cpu_list, raise_nofile
from benchmarks.report import Results, ServerResult, console_report, write_outputs
from benchmarks.scenarios import QUICK_SCENARIOS, SCENARIOS
from benchmarks.servers import SERVERS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Where a --before run writes unless --output says: not over the published results.
BEFORE_RESULTS_DIR = Path(__file__).resolve().parent / "build" / "before-results"


def _names(text: str, known: Mapping[str, object], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"benchmarks: unknown {what} {', '.join(unknown)}; "
                         f"choose from {', '.join(known)}")
    return names


def _qactuar_python_version(path: str) -> str:
    """The Python version of `path`, which must import qactuar; one clear line if not."""
    check = ("import platform, qactuar.cli, qactuar.models.aio, qactuar.protocols.http1; "
             "print(platform.python_version())")
    try:
        done = subprocess.run([path, "-c", check], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"benchmarks: --qactuar-python {path}: cannot run it: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"benchmarks: --qactuar-python {path}: cannot import "
                         f"qactuar's server ({last})")
    return done.stdout.strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=(
        "Run Qactuar and its peers side by side: one worker pinned to one CPU, "
        "the load tool pinned to another."))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated, from: %(default)s")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated, from: %(default)s")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario (default 3)")
    parser.add_argument("--duration", type=int, default=5,
                        help="seconds of load per round (default 5)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of load before each measured round, 0 for none (default 1)")
    parser.add_argument("--connections", type=int, default=5000,
                        help="idle keep-alive connections in idle-memory (default 5000)")
    parser.add_argument("--server-cpu", default="0", help="CPU of the server (default 0)")
    parser.add_argument("--load-cpu", default="1", help=(
        "CPUs of the load tool, one wrk thread each (default 1; e.g. 1-3 where the "
        "limit server outruns one wrk thread)"))
    parser.add_argument("--load-tool", choices=("qactuar", "wrk"), default="qactuar", help=(
        "load tool of the HTTP/1.1 scenarios: qactuar load (default: less CPU per request "
        "than wrk on one core, see docs/load.md) or wrk"))
    parser.add_argument("--quick", action="store_true", help=(
        f"smoke test in under a minute: {', '.join(QUICK_SCENARIOS)}, "
        "one 2 s round, 1 s warm-up (unless --scenarios/--rounds/... are given)"))
    parser.add_argument("--qactuar-python", metavar="PATH", help=(
        "interpreter to run the qactuar servers under (one with qactuar installed, e.g. "
        "a pyenv 3.13 venv); the report names its Python version. Default: this one"))
    parser.add_argument("--pythons", metavar="X.Y,...", help=(
        "also run qactuar, and granian and limit when --servers names them, under each of "
        "these Python versions (e.g. 3.12,3.13), as rows 'qactuar (3.12)', 'granian (3.12)' "
        "... in the same run, so that each version compares servers on the same Python; "
        "each gets a venv under benchmarks/build/ with qactuar compiled and granian "
        "installed (made on first use)"))
    parser.add_argument("--before", metavar="REF", help=(
        "also run qactuar as it was at git commit REF (e.g. HEAD, main~1), as a row "
        "'qactuar [<commit>]' beside each qactuar row, in the same rounds: a change's "
        "before/after in one run. REF is checked out and compiled under "
        "benchmarks/build/before-<commit>; results go to benchmarks/build/before-results "
        "unless --output is given"))
    parser.add_argument("--no-install", action="store_true",
                        help="do not pip/apt-get install missing peers or load tools")
    parser.add_argument("--output", type=Path,
                        help="directory for latest.json/.md/.svg (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = BEFORE_RESULTS_DIR if args.before else RESULTS_DIR
    if args.quick:
        given = set(argv if argv is not None else sys.argv[1:])
        if not any(a.startswith("--scenarios") for a in given):
            args.scenarios = ",".join(QUICK_SCENARIOS)
        if not any(a.startswith("--rounds") for a in given):
            args.rounds = 1
        if not any(a.startswith("--duration") for a in given):
            args.duration = 2
    if args.qactuar_python:
        args.qactuar_python_version = _qactuar_python_version(args.qactuar_python)
    args.scenarios = _names(args.scenarios, SCENARIOS, "scenario")
    args.servers = _names(args.servers, SERVERS, "server")
    args.python_versions = pythons.parse_versions(args.pythons) if args.pythons else []
    if args.rounds < 1 or args.duration < 1:
        raise SystemExit("benchmarks: --rounds and --duration must be at least 1")
    return args


def add_python_rows(args: argparse.Namespace) -> dict[str, str]:
    """The servers of --pythons, registered and put in args.servers after the one each is
    a variant of: qactuar, and the peers of servers.PEERS_PER_PYTHON that --servers names,
    under each version; row name -> what the report says of it.  A version that cannot be
    set up is one clear line and no row (the others still run)."""
    if not args.python_versions:
        return {}
    if "qactuar" not in args.servers:
        print("benchmarks: --pythons adds rows beside the qactuar server, which --servers "
              "leaves out: no rows added", file=sys.stderr, flush=True)
        return {}
    peers = [name for name in servers.PEERS_PER_PYTHON if name in args.servers]
    packages = tuple(p for p in (SERVERS[name].package for name in peers) if p)
    rows: dict[str, str] = {}
    added: dict[str, list[str]] = {}
    for version in args.python_versions:
        try:
            found = pythons.ensure(version, install=not args.no_install, peers=packages)
        except pythons.PythonMissing as missing:
            print(missing, file=sys.stderr, flush=True)
            continue
        for base in ("qactuar", *peers):
            name = servers.version_row(base, version)
            servers.add_server_under(base, name, found.python)
            rows[name] = f"Python {found.full_version} ({found.python})"
            added.setdefault(base, []).append(name)
    for base, names in added.items():
        at = args.servers.index(base) + 1
        args.servers[at:at] = names
    return rows


def run(args: argparse.Namespace, settings: Settings) -> Results:
    results: Results = {}
    for scenario_name in args.scenarios:
        scenario = SCENARIOS[scenario_name]
        servers = [s for s in args.servers if scenario_name not in SERVERS[s].skips
                   and (SERVERS[s].only is None or scenario_name in SERVERS[s].only)
                   and (scenario.servers is None or SERVERS[s].base in scenario.servers)]
        tool = scenario.load_tool or args.load_tool
        entry = {"title": scenario.title, "kind": scenario.kind, "pinned": scenario.pinned,
                 "load_note": scenario.load_note, "headline": scenario.headline,
                 "load_tool": ("qactuar load" if scenario.kind == "wrk"
                               and tool == "qactuar" else None),
                 "servers": {s: ServerResult() for s in servers}}
        results[scenario_name] = entry
        measure = MEASUREMENTS[scenario.kind]
        for round_number in range(1, args.rounds + 1):
            for server in servers:
                label = f"{scenario_name}-{round_number}"
                try:
                    metrics = measure(SERVERS[server], scenario, settings, label)
                except (ServerFailed, RuntimeError, OSError, SubprocessError) as error:
                    entry["servers"][server].failures.append(str(error))
                    print(f"  {scenario_name} round {round_number} {server}: FAILED: {error}",
                          flush=True)
                    continue
                entry["servers"][server].rounds.append(metrics)
                shown = ", ".join(f"{k}={v:,.2f}" for k, v in metrics.items())
                print(f"  {scenario_name} round {round_number} {server}: {shown}", flush=True)
    return results


def add_before_rows(args: argparse.Namespace) -> dict[str, str]:
    """The rows of --before: a twin of each qactuar row running the commit, put in
    args.servers right after it; row name -> what the report says of it."""
    if not args.before:
        return {}
    rows = before.qactuar_rows(args.servers)
    if not rows:
        print("benchmarks: --before adds rows beside the qactuar rows, which --servers "
              "leaves out: no rows added", file=sys.stderr, flush=True)
        return {}
    try:
        commit, twins = before.add_rows(args.before, rows, install=not args.no_install)
    except before.BeforeFailed as failed:
        raise SystemExit(str(failed)) from None
    for name in rows:
        args.servers.insert(args.servers.index(name) + 1, before.row_name(name, commit))
    return twins


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM, and SIGINT even where a shell started us with it ignored, unwind
    # through the `with ServerProcess` blocks so that no server is left running.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    if not args.no_install:
        environment.ensure_tools()
        environment.ensure_packages(args.servers,
                                    {p for s in args.scenarios for p in SCENARIOS[s].packages},
                                    any(SCENARIOS[s].kind == "ws" for s in args.scenarios))
    if set(cpu_list(args.server_cpu)) & set(cpu_list(args.load_cpu)) or (os.cpu_count() or 1) < 2:
        print("warning: server and load tool share a CPU; figures are not comparable "
              "with a two-CPU run", file=sys.stderr)
    if args.qactuar_python:
        servers.qactuar_python = args.qactuar_python
    python_rows = add_python_rows(args)
    before_rows = add_before_rows(args)
    nofile = raise_nofile()
    if "idle-memory" in args.scenarios and nofile < args.connections + 100:
        raise SystemExit(f"benchmarks: open-files limit {nofile} is below "
                         f"{args.connections + 100}; raise it (ulimit -n) or use --connections")
    # The driver's own clients (verification, idle connections) stay off the server's CPU.
    load_cpus = cpu_list(args.load_cpu)
    os.sched_setaffinity(0, load_cpus)
    settings = Settings(seconds=args.duration, warmup_seconds=args.warmup,
                        server_cpu=args.server_cpu, load_cpu=args.load_cpu,
                        load_threads=len(load_cpus), connections=args.connections,
                        load_tool=args.load_tool)
    meta = environment.describe({
        "rounds": args.rounds, "seconds": args.duration, "warmup_seconds": args.warmup,
        "wrk_threads": settings.load_threads, "wrk_connections": wrk.CONNECTIONS,
        "http1_load_tool": "qactuar load" if args.load_tool == "qactuar" else "wrk",
        "idle_connections": args.connections, "startup_samples": settings.startup_samples,
        "server_cpu": args.server_cpu, "load_cpu": args.load_cpu,
        "qactuar_python": getattr(args, "qactuar_python_version", None),
        "qactuar_pythons": python_rows, "qactuar_before": before_rows})
    print(f"benchmarks: scenarios {', '.join(args.scenarios)}; servers "
          f"{', '.join(args.servers)}; {args.rounds} round(s)", flush=True)
    try:
        results = run(args, settings)
    except KeyboardInterrupt:
        print("benchmarks: interrupted; servers stopped, nothing written", file=sys.stderr)
        return 130
    print()
    print(console_report(results, meta))
    for path in write_outputs(results, meta, args.output):
        print(f"wrote {path}")
    failed = [f"{scenario}/{server}" for scenario, entry in results.items()
              for server, result in entry["servers"].items() if result.failures]
    if failed:
        print(f"benchmarks: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
