"""The analysis on a real Prometheus scraping two real model-wrapper processes, stable and canary, under load.

The canary serves ``SwitchableClassifier`` (tests/support/canary_load.py): its behaviour file makes it good,
raise on some inputs (HTTP 500) or sleep 0.3 s per call, so each scenario is a different MLflow model
behaving honestly badly. A bounded load on 127.0.0.1 splits requests 50/50; the analysis ticks like the
rollout does (``end`` = now) until it decides.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from progressive_delivery.analysis import AnalysisConfig, Arm, Outcome, Verdict, analyse
from progressive_delivery.metrics import PrometheusSource, QueryStatus
from serving_core.errors import InvalidInputError, NotFoundError
from tests.support.canary_load import save_switchable_classifier
from tests.support.prometheus import LocalPrometheus, local_prometheus
from tests.support.served_models import RunningServer, running_server
from tests.support.together import entered_together
from tests.support.tools import require_tools

MODEL = "clf"
# Small samples so a scenario decides in seconds; the slow threshold sits on a histogram bucket.
CONFIG = AnalysisConfig.model_validate(
    {
        "mode": "wrapper",
        "min_requests_per_arm": 100,
        "slow_threshold_seconds": 0.25,
        "error": {"relative": 1.0, "absolute": 0.05, "guardrail": 0.2},
        "slow": {"relative": 1.0, "absolute": 0.05, "guardrail": 0.3},
        # p99 of a hundred requests on a shared 2-core machine is noise; the slow fraction judges latency.
        "latency": {"enabled": False},
        "distribution": {"min_predictions": 100, "max_js_divergence": 0.1},
    }
)


@dataclass
class Lab:
    stable: RunningServer
    canary: RunningServer
    behaviour: Path
    prometheus: LocalPrometheus

    @staticmethod
    def arm(name: str, server: RunningServer) -> Arm:
        return Arm(name, {"instance": f"127.0.0.1:{server.http_port}"})


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_tools("prometheus")
    work = tmp_path_factory.mktemp("analysis-lab")
    behaviour = work / "canary-behaviour"
    stable_model = save_switchable_classifier(work / "stable-model", work / "stable-behaviour")
    canary_model = save_switchable_classifier(work / "canary-model", behaviour)
    (work / "stable").mkdir()
    (work / "canary").mkdir()
    servers = (
        running_server(stable_model, MODEL, work / "stable"),
        running_server(canary_model, MODEL, work / "canary"),
    )
    with entered_together(*servers) as (stable, canary):
        # One request each first: a counter series born mid-window loses what it counted before its first scrape.
        send_split(stable, canary, 20, seed=0)
        targets = [f"127.0.0.1:{stable.http_port}", f"127.0.0.1:{canary.http_port}"]
        with local_prometheus(work, targets) as prometheus:
            deadline = time.monotonic() + 120  # Prometheus starts slowly while images build beside the tests
            # Each wrapper also has a v1 series at zero: count instances whose v2 requests Prometheus has seen.
            scraped = 'count(sum by (instance) (model_requests_total{code="200",protocol="v2"}) > 0)'
            while prometheus.scalar(scraped) != 2:
                assert time.monotonic() < deadline, (
                    f"Prometheus did not scrape both wrappers: {prometheus.target_health()}"
                )
                time.sleep(0.5)
            yield Lab(stable, canary, behaviour, prometheus)


def send_split(stable: RunningServer, canary: RunningServer, count: int, *, seed: int) -> dict[str, int]:
    """``count`` V2 requests, each to stable or canary at random (50/50), 8 at a time; status codes by arm."""
    rng = random.Random(seed)
    plan = [(rng.choice((stable, canary)), [round(rng.uniform(0, 1.5), 3) for _ in range(4)]) for _ in range(count)]
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

    def send(item: tuple[RunningServer, list[float]]) -> tuple[str, int]:
        server, row = item
        body = {"inputs": [{"name": "input_0", "shape": [1, 4], "datatype": "FP64", "data": row}]}
        response = session.post(f"{server.url}/v2/models/{MODEL}/infer", json=body, timeout=30)
        return ("canary" if server is canary else "stable"), response.status_code

    outcomes: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for arm, status in pool.map(send, plan):
            key = f"{arm} {status}"
            outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


def run_scenario(lab: Lab, behaviour: str, *, seed: int, count: int = 260) -> tuple[Verdict, dict[str, int]]:
    lab.behaviour.write_text(behaviour, encoding="utf-8")
    time.sleep(1.5)  # the window starts after the previous scenario's last scrape
    start = time.time()
    # increase() sees only samples inside the window: let a scrape or two land before the load begins.
    time.sleep(2.5)
    sent = send_split(lab.stable, lab.canary, count, seed=seed)
    source = PrometheusSource(lab.prometheus.url)
    deadline = time.monotonic() + 20
    while True:
        verdict = analyse(
            source, CONFIG, Lab.arm("stable", lab.stable), Lab.arm("canary", lab.canary), start, time.time()
        )
        if verdict.outcome in (Outcome.PASS, Outcome.FAIL) or time.monotonic() > deadline:
            return verdict, sent
        time.sleep(1)


def test_a_good_canary_passes(lab: Lab) -> None:
    verdict, sent = run_scenario(lab, "good", seed=1)
    assert set(sent) == {"stable 200", "canary 200"}
    assert verdict.outcome is Outcome.PASS, verdict.reasons
    assert {check.name: check.outcome for check in verdict.checks} == {
        "error": Outcome.PASS,
        "slow": Outcome.PASS,
        "distribution": Outcome.PASS,
    }
    canary_requests = verdict.counts["canary"]["requests"]
    assert canary_requests is not None
    # increase() extrapolates to the window's ends, so a few-second window may count more than was sent.
    assert canary_requests >= CONFIG.min_requests_per_arm
    # The wrapper creates its 5xx series at zero, so even the error query has an answer.
    assert {(record.name, record.status) for record in verdict.queries} == {
        ("requests", QueryStatus.OK),
        ("errors", QueryStatus.OK),
        ("fast", QueryStatus.OK),
        ("predictions", QueryStatus.OK),
    }


def test_a_canary_that_fails_requests_is_rolled_back(lab: Lab) -> None:
    verdict, sent = run_scenario(lab, "errors", seed=2)
    assert sent["canary 500"] > 30
    assert verdict.outcome is Outcome.FAIL
    assert [check.name for check in verdict.checks if check.outcome is Outcome.FAIL] == ["error"]
    assert verdict.reasons[0].startswith("error: canary rate ")
    errors = verdict.counts["canary"]["errors"]
    assert errors is not None
    assert errors > 30


def test_a_slow_canary_is_rolled_back(lab: Lab) -> None:
    verdict, _ = run_scenario(lab, "latency", seed=3, count=240)
    assert verdict.outcome is Outcome.FAIL
    assert {check.name: check.outcome for check in verdict.checks}["slow"] is Outcome.FAIL
    assert {check.name: check.outcome for check in verdict.checks}["error"] is not Outcome.FAIL


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_prometheus_unreachable_holds_never_passes_or_fails(lab: Lab) -> None:
    source = PrometheusSource(f"http://127.0.0.1:{closed_port()}", timeout_seconds=1)
    now = time.time()
    verdict = analyse(source, CONFIG, Lab.arm("stable", lab.stable), Lab.arm("canary", lab.canary), now - 30, now)
    assert verdict.outcome is Outcome.HOLD
    assert {check.outcome for check in verdict.checks} == {Outcome.HOLD}
    assert "stable requests: Prometheus unreachable (ConnectionError" in verdict.reasons[0]
    assert {record.status for record in verdict.queries} == {QueryStatus.UNREACHABLE}


def test_an_arm_prometheus_does_not_know_holds(lab: Lab) -> None:
    now = time.time()
    ghost = Arm("canary", {"instance": f"127.0.0.1:{closed_port()}"})
    verdict = analyse(PrometheusSource(lab.prometheus.url), CONFIG, Lab.arm("stable", lab.stable), ghost, now - 30, now)
    assert verdict.outcome is Outcome.HOLD
    assert f"canary: no request series match {{{ghost.matchers()}}}" in verdict.reasons[0]


def test_prometheus_errors_map_to_serving_core_errors(lab: Lab) -> None:
    with pytest.raises(InvalidInputError, match="Prometheus rejected the query 'sum\\(rate\\(x\\[5m\\]\\)'"):
        PrometheusSource(lab.prometheus.url).instant("sum(rate(x[5m])", time.time())
    with pytest.raises(NotFoundError, match="is not a Prometheus HTTP API"):
        PrometheusSource(lab.stable.url).instant("up", time.time())


def test_range_queries_return_points(lab: Lab) -> None:
    now = time.time()
    result = PrometheusSource(lab.prometheus.url).range('sum(model_requests_total{code="200"})', now - 10, now, 1)
    assert result.status is QueryStatus.OK
    assert len(result.series) == 1
    assert len(result.series[0].points) >= 8
