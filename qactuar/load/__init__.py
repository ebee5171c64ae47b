"""`qactuar load`: a load generator that drives connections at protocol level.

The package owns the command line (`cli.py`, `options.py`), what is loaded
(`targets.py`; `target_file.py` and `rotation.py` for `--targets`;
`scenario.py` for `--scenario`), one engine per wire protocol
(`http1_engine.py`, `http2_engine.py`, `ws_engine.py`), the run that
opens connections and decides when each request is sent (`runner.py`,
`rate.py`), the statistics (`stats.py`, `histogram.py`) and what is made of
them (`report.py`, `export.py`, `html_report.py`, `merge.py`, `fail_if.py`),
and the worker processes of `-t` (`workers.py`).  Except for `--scenario` (whose
users make their requests with `qactuar.client`), it never builds a Response
object per request: engines write pre-built request bytes and scan responses
for their framing only.
"""
