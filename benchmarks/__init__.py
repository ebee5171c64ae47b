"""Benchmark suite: Qactuar and its peers side by side, on one machine, in one run.

Run it with `python -m benchmarks` (see docs/benchmarks.md). Nothing here is imported by
`qactuar/`; the tests import only `__main__.parse_args`, to check the documented commands.
"""
