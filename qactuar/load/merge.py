"""`qactuar load merge A.json B.json ...`: one report from the JSON files of several runs.

Runs made at the same time (copies on several machines, a Kubernetes Indexed
Job) are merged as one run: counts and histograms add up exactly, the duration
is the longest one's, requests per second add up.  `--sequential` treats the
files as runs one after the other (durations add up).  A file that is not a
`--json` result is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qactuar.load.export import read_json, write_json
from qactuar.load.report import format_report


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"qactuar load merge: error: {message}", file=sys.stderr)
        sys.exit(2)


def merge_main(argv: list[str]) -> int:
    parser = _Parser(prog="qactuar load merge",
                     description="Merge the --json results of several runs into one report.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="--json files of runs")
    parser.add_argument("--json", metavar="FILE", help="write the merged results as JSON")
    parser.add_argument("--sequential", action="store_true",
                        help="the runs came one after another (durations add up)")
    args = parser.parse_args(argv)
    try:
        loaded = [read_json(Path(name)) for name in args.files]
    except ValueError as exc:
        print(f"qactuar load merge: error: {exc}", file=sys.stderr)
        return 2
    merged, first_run = loaded[0]
    for stats, _ in loaded[1:]:
        merged.merge(stats, concurrent=not args.sequential)
    run = {**first_run, "merged_from": [str(name) for name in args.files]}
    workers = sum(int(run_info.get("workers") or 1) for _, run_info in loaded)
    print(format_report(merged, None, workers, None, str(run.get("protocol", "h1"))))
    if args.json:
        write_json(Path(args.json), merged, run)
    return 0
