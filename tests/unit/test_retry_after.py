"""Retry-After headers (RFC 9110 10.2.3): seconds or an HTTP date, as callers of overloaded services read them."""

from __future__ import annotations

import pytest

from serving_core.retry_after import retry_after_seconds


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), (None, None), ("soon", None),
     ("Sun, 06 Nov 1994 08:49:37 GMT", 7.0)],
)  # fmt: skip
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, now=784111770.0) == expected
