"""Benchmark suite: Qactuar and its peers side by side, on one machine, in one run.

Run it with `python -m benchmarks` (see the README's "Benchmarks" section).
Nothing here is imported by `qactuar/` or by the tests.
"""
