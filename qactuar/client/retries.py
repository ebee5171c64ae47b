"""When a failed request is tried again, and how long to wait first.

Only idempotent methods (RFC 9110 9.2.2) with a body we can send again are
retried: after a failure to connect or a connection lost before the answer
ended, and after a 429/502/503/504 answer.  The wait doubles from
BACKOFF_FACTOR each attempt; a Retry-After (seconds or an HTTP date) is
honoured instead, unless it asks for more than MAX_RETRY_AFTER seconds, in which
case the answer is returned as it is rather than sleeping that long.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_ERROR_CODES = frozenset({700, 702, 703, 708, 714, 720, 721})
BACKOFF_FACTOR = 0.1
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0


def may_retry_error(request: Any, error: Any) -> bool:
    return (request.method in IDEMPOTENT_METHODS and request.replayable
            and error.code in RETRY_ERROR_CODES)


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt number `attempt` (1 for the first retry)."""
    return min(BACKOFF_FACTOR * (2 ** (attempt - 1)), MAX_BACKOFF)


def retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After value asks for; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def wait_for(request: Any, response: Any, attempt: int) -> float | None:
    """Seconds to wait before retrying after `response`, or None not to retry."""
    if request.method not in IDEMPOTENT_METHODS or not request.replayable:
        return None
    asked = retry_after(response.headers.get("retry-after"))
    if asked is None:
        return backoff(attempt)
    if asked > MAX_RETRY_AFTER:
        return None
    return asked
