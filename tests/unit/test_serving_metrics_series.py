"""The wrapper's request counters exist at zero from the start, so increase() counts a canary's first errors."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from model_wrappers.metrics import ServingMetrics


def series(registry: CollectorRegistry, prefix: str) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith(prefix) and not line.startswith("#")
    }


def test_success_and_server_error_series_start_at_zero() -> None:
    registry = CollectorRegistry()
    ServingMetrics("iris", registry=registry)
    expected = {
        f'model_requests_total{{code="{code}",model_name="iris",protocol="{protocol}"}}': 0.0
        for protocol, codes in (
            ("v1", ("200", "500", "503")),
            ("v2", ("200", "500", "503")),
            ("grpc-v2", ("OK", "INTERNAL", "UNAVAILABLE")),
        )
        for code in codes
    }
    assert series(registry, "model_requests_total{") == expected
    assert set(series(registry, "model_request_errors_total{")) == {
        'model_request_errors_total{code="500",model_name="iris",protocol="v1"}',
        'model_request_errors_total{code="503",model_name="iris",protocol="v1"}',
        'model_request_errors_total{code="500",model_name="iris",protocol="v2"}',
        'model_request_errors_total{code="503",model_name="iris",protocol="v2"}',
        'model_request_errors_total{code="INTERNAL",model_name="iris",protocol="grpc-v2"}',
        'model_request_errors_total{code="UNAVAILABLE",model_name="iris",protocol="grpc-v2"}',
    }


def test_observed_requests_count_on_the_initial_series() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics("iris", registry=registry)
    metrics.observe_request("v2", "500", 0.01)
    metrics.observe_request("v2", "404", 0.01)
    counts = series(registry, "model_request_errors_total{")
    assert counts['model_request_errors_total{code="500",model_name="iris",protocol="v2"}'] == 1.0
    assert counts['model_request_errors_total{code="404",model_name="iris",protocol="v2"}'] == 1.0
