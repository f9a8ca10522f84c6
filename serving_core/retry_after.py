"""The HTTP ``Retry-After`` header (RFC 9110 §10.2.3): delay seconds or an HTTP date."""

from __future__ import annotations

import email.utils
import time


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value, ``None`` when absent or unreadable; never negative.

    Args:
        value: The header's value: delay seconds (``"2"``) or an HTTP date.
        now: The current Unix time for an HTTP date; ``time.time()`` when not given.
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
