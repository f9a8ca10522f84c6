"""Prometheus metrics a canary analysis can judge: requests, errors, latency, batching, predictions.

They live in the default registry, which KServe's ``GET /metrics`` exposes next to its own
latency histograms.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from model_wrappers.settings import DEFAULT_LATENCY_BUCKETS

# More distinct labels than this are folded into one "other" class, so a regression model
# mistaken for a classifier cannot blow up the series count.
MAX_PREDICTION_CLASSES = 50
OTHER_CLASS = "other"


# Success and server-error codes per protocol (what a canary analysis compares), created at zero.
_INITIAL_CODES = {
    "v1": ("200", "500", "503"),
    "v2": ("200", "500", "503"),
    "grpc-v2": ("OK", "INTERNAL", "UNAVAILABLE"),
}


def _failed(code: str) -> bool:
    """An HTTP status >= 400 or a gRPC status other than OK."""
    return not (code.isdigit() and int(code) < 400) and code != "OK"


def _batch_buckets(max_batch_size: int) -> list[float]:
    buckets = [1.0]
    while buckets[-1] < max_batch_size:
        buckets.append(min(buckets[-1] * 2, float(max_batch_size)))
    return buckets


class ServingMetrics:
    """The wrapper's metrics for one model, labelled ``model_name``."""

    def __init__(
        self,
        model_name: str,
        *,
        latency_buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
        max_batch_size: int = 64,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        """Create the metrics in ``registry`` (the process-wide default unless a test passes its own)."""
        self.model_name = model_name
        self.requests = Counter(
            "model_requests",
            "Inference requests by protocol (v1, v2, grpc-v2) and status code",
            ["model_name", "protocol", "code"],
            registry=registry,
        )
        self.errors = Counter(
            "model_request_errors",
            "Inference requests that failed (status code >= 400, or a failed gRPC status)",
            ["model_name", "protocol", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "model_request_duration_seconds",
            "Inference request latency from the first byte read to the response, by protocol",
            ["model_name", "protocol"],
            buckets=sorted(latency_buckets),
            registry=registry,
        )
        self.batch_rows = Histogram(
            "model_batch_size",
            "Rows per model predict call",
            ["model_name"],
            buckets=_batch_buckets(max_batch_size),
            registry=registry,
        )
        self.batch_requests = Histogram(
            "model_batch_requests",
            "Caller requests merged into one model predict call",
            ["model_name"],
            buckets=_batch_buckets(max_batch_size),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "model_queue_depth", "Requests waiting for a batch", ["model_name"], registry=registry
        ).labels(model_name=model_name)
        self.predictions = Counter(
            "model_prediction",
            "Predicted rows by class, for classifiers (output-distribution checks)",
            ["model_name", "class"],
            registry=registry,
        )
        self._classes_seen: set[str] = set()
        self._class_series: dict[str, Any] = {}  # labelled children, as for requests
        # Series exist at zero from the start: Prometheus cannot see what a counter held before its first
        # scrape, so a 500 series born mid-window would lose its first errors from every increase().
        for protocol, codes in _INITIAL_CODES.items():
            self.latency.labels(model_name, protocol)
            for code in codes:
                self.requests.labels(model_name, protocol, code)
                if _failed(code):
                    self.errors.labels(model_name, protocol, code)
        # Labelled children per (protocol, code): .labels() costs a lock and a hash on every request.
        self._request_series: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self._batch_series = (self.batch_rows.labels(model_name), self.batch_requests.labels(model_name))

    def observe_request(self, protocol: str, code: str, duration_s: float) -> None:
        """Count one finished inference request; ``code`` is the HTTP status or the gRPC status name."""
        series = self._request_series.get((protocol, code))
        if series is None:
            series = (
                self.requests.labels(self.model_name, protocol, code),
                self.errors.labels(self.model_name, protocol, code) if _failed(code) else None,
                self.latency.labels(self.model_name, protocol),
            )
            self._request_series[(protocol, code)] = series
        requests, errors, latency = series
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(duration_s)

    def observe_batch(self, rows: int, requests: int) -> None:
        """Record the size of one predict call."""
        batch_rows, batch_requests = self._batch_series
        batch_rows.observe(rows)
        batch_requests.observe(requests)

    def count_classes(self, labels: np.ndarray[Any, Any]) -> None:
        """Count predicted class labels (one per row)."""
        # collections.Counter, not np.unique (a sort): this runs once per predict, a few rows a call without batching.
        values = labels.ravel().tolist()
        # str() of a Python int or bool reads as numpy's astype(str) does, without an array of strings.
        counts = collections.Counter(
            map(str, values) if labels.dtype.kind in ("i", "u", "b") else labels.astype(str).ravel().tolist()
        )
        for value in sorted(counts):
            label = value
            if label not in self._classes_seen:
                if len(self._classes_seen) >= MAX_PREDICTION_CLASSES:
                    label = OTHER_CLASS
                else:
                    self._classes_seen.add(label)
            series = self._class_series.get(label)
            if series is None:
                series = self._class_series[label] = self.predictions.labels(self.model_name, label)
            series.inc(counts[value])


def is_class_output(array: np.ndarray[Any, Any]) -> bool:
    """A classifier's output: one integer, boolean or text label per row."""
    one_per_row = array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)
    return one_per_row and array.dtype.kind in ("i", "u", "b", "O", "U", "S")
