"""Prometheus HTTP API client for the analysis: instant and range queries with honest "no data".

A canary must never be promoted or rolled back because the metrics backend was down, so the outcome of
a query that could not be answered is a value, not an exception: :class:`QueryResult` with
``status`` ``unreachable`` (connection refused, DNS, timeout), ``unavailable`` (Prometheus 5xx, query
timeout) or ``empty`` (no series). The analysis turns each of those into HOLD.

Only mistakes a person must fix raise, as ``serving_core`` errors: a query Prometheus rejects as bad
(400 ``bad_data`` → :class:`~serving_core.errors.InvalidInputError`), refused credentials
(401/403 → :class:`~serving_core.errors.PermissionDeniedError`) and a URL that is not a Prometheus API
(404 → :class:`~serving_core.errors.NotFoundError`).

API (used by the rollout): :class:`MetricsSource` (the protocol the analysis reads through; tests and the
benchmark may implement it) and :class:`PrometheusSource` (``PrometheusSource(url, timeout_seconds=5)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import requests

from serving_core.errors import InvalidInputError, NotFoundError, PermissionDeniedError


class QueryStatus(StrEnum):
    """Whether a query produced data, and why not."""

    OK = "ok"
    EMPTY = "empty"  # answered, no series matched (wrong labels, nothing scraped yet)
    UNREACHABLE = "unreachable"  # no answer at all
    UNAVAILABLE = "unavailable"  # answered with a server-side error (5xx, 422 execution/timeout)


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class QueryResult:
    """An instant query's answer, or why there is none."""

    query: str
    time: float
    status: QueryStatus
    samples: tuple[Sample, ...] = ()
    detail: str = ""

    @property
    def has_data(self) -> bool:
        """Whether at least one series came back."""
        return self.status is QueryStatus.OK and bool(self.samples)

    @property
    def scalar(self) -> float | None:
        """The value of a one-series result (several are summed); ``None`` without data or when NaN."""
        if not self.has_data:
            return None
        total = math.fsum(sample.value for sample in self.samples)
        return None if math.isnan(total) else total


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: labels and ``(timestamp, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class RangeResult:
    """A range query's answer, or why there is none."""

    query: str
    start: float
    end: float
    step: float
    status: QueryStatus
    series: tuple[RangeSeries, ...] = field(default=())
    detail: str = ""


class MetricsSource(Protocol):
    """Where the analysis reads metrics: Prometheus in production, anything answering PromQL in tests."""

    def instant(self, query: str, at: float) -> QueryResult:
        """Evaluate ``query`` at Unix time ``at``."""
        ...

    def range(self, query: str, start: float, end: float, step: float) -> RangeResult:
        """Evaluate ``query`` every ``step`` seconds from ``start`` to ``end``."""
        ...


class PrometheusSource:
    """The Prometheus HTTP API (``/api/v1/query``, ``/api/v1/query_range``)."""

    def __init__(self, url: str, timeout_seconds: float = 5, *, headers: Mapping[str, str] | None = None) -> None:
        """Talk to the Prometheus at ``url`` (e.g. ``http://prometheus.monitoring:9090``).

        Args:
            url: base URL, without ``/api/v1``.
            timeout_seconds: per-request timeout; a timeout is ``unreachable``, never a failure.
            headers: extra headers (a bearer token for a Prometheus behind an auth proxy).

        Raises:
            InvalidInputError: ``url`` is not an http(s) URL.
        """
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"Prometheus URL {url!r} is not an http(s) URL", hint="pass e.g. --prometheus http://prometheus:9090"
            )
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._session = requests.Session()
        self._session.headers.update(dict(headers or {}))

    def instant(self, query: str, at: float) -> QueryResult:
        """Evaluate ``query`` at ``at``; see the module docstring for what each failure becomes."""
        body, status, detail = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"}, query)
        if body is None:
            return QueryResult(query, at, status, detail=detail)
        data = body.get("data", {})
        result_type, result = data.get("resultType"), data.get("result")
        if result_type == "scalar":
            samples: tuple[Sample, ...] = (Sample({}, float(result[1])),)
        else:
            samples = tuple(Sample(dict(item.get("metric", {})), float(item["value"][1])) for item in result or [])
        return QueryResult(query, at, QueryStatus.OK if samples else QueryStatus.EMPTY, samples)

    def range(self, query: str, start: float, end: float, step: float) -> RangeResult:
        """Evaluate ``query`` over ``[start, end]`` every ``step`` seconds."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        body, status, detail = self._get("/api/v1/query_range", params, query)
        if body is None:
            return RangeResult(query, start, end, step, status, detail=detail)
        series = tuple(
            RangeSeries(dict(item.get("metric", {})), tuple((float(t), float(v)) for t, v in item.get("values", [])))
            for item in body.get("data", {}).get("result", [])
        )
        return RangeResult(query, start, end, step, QueryStatus.OK if series else QueryStatus.EMPTY, series)

    def _get(self, path: str, params: dict[str, str], query: str) -> tuple[dict[str, Any] | None, QueryStatus, str]:
        """The decoded success body, or ``None`` with the no-data status and why; raises for mistakes to fix."""
        url = f"{self.url}{path}"
        try:
            response = self._session.get(url, params=params, timeout=self.timeout_seconds)
        except requests.RequestException as error:
            return None, QueryStatus.UNREACHABLE, f"{type(error).__name__}: {error}"
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        message = f"{body.get('errorType', '')}: {body.get('error', response.text[:200])}"
        if response.status_code == 400:
            raise InvalidInputError(
                f"Prometheus rejected the query {query!r}: {message}",
                hint="fix the PromQL template in the analysis file (placeholders: $selector, $window, $le, $quantile)",
            )
        if response.status_code in (401, 403):
            raise PermissionDeniedError(
                f"Prometheus at {self.url} refused the query ({response.status_code})",
                hint="pass credentials with prometheus_headers (e.g. Authorization: Bearer ...)",
            )
        if response.status_code == 404:
            raise NotFoundError(
                f"{url} does not exist: {self.url} is not a Prometheus HTTP API",
                hint="pass the Prometheus base URL, without /api/v1",
            )
        if response.status_code != 200 or body.get("status") != "success":
            return None, QueryStatus.UNAVAILABLE, f"HTTP {response.status_code} {message}"
        return body, QueryStatus.OK, ""
