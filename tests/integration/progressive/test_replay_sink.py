"""The replay sink on real model wrappers: KServe-format CloudEvents in, replays to the canary, agreement out.

Stable and canary are real ``python -m model_wrappers`` processes serving ``SwitchableClassifier`` (the canary's
behaviour file picks good / changed / latency). Events are posted exactly as KServe's agent posts them
(tests/support/kserve_logger.py); Prometheus scrapes the sink and :func:`shadow_verdict` judges from it.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from progressive_delivery.analysis import AnalysisConfig, Outcome, Verdict
from progressive_delivery.metrics import PrometheusSource
from progressive_delivery.replay_sink import ReplaySink, SinkSettings
from progressive_delivery.shadow import shadow_verdict
from progressive_delivery.shadow_compare import Comparison
from serving_core.processes import log_tail, port_from_file, stop_process, wait_for, wait_until
from tests.support.canary_load import save_switchable_classifier
from tests.support.kserve_logger import LoggerIdentity, log_exchange
from tests.support.prometheus import LocalPrometheus, local_prometheus
from tests.support.served_models import REPO_ROOT, RunningServer, running_server
from tests.support.together import entered_together
from tests.support.tools import require_tools

MODEL = "clf"
IDENTITY = LoggerIdentity("clf", "shadow-test")
CONFIG = AnalysisConfig.model_validate(
    {"mode": "wrapper", "shadow": {"min_pairs": 60, "agreement_min": 0.9, "max_latency_ratio": 5.0}}
)


@dataclass
class ShadowLab:
    stable: RunningServer
    canary: RunningServer
    canary_behaviour: Path
    sink: ReplaySink
    prometheus: LocalPrometheus


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShadowLab]:
    require_tools("prometheus")
    work = tmp_path_factory.mktemp("shadow-lab")
    stable_model = save_switchable_classifier(work / "stable-model", work / "stable-behaviour")
    canary_behaviour = work / "canary-behaviour"
    canary_model = save_switchable_classifier(work / "canary-model", canary_behaviour)
    (work / "stable").mkdir()
    (work / "canary").mkdir()
    servers = (
        running_server(stable_model, MODEL, work / "stable"),
        running_server(canary_model, MODEL, work / "canary"),
    )
    with (
        entered_together(*servers) as (stable, canary),
        ReplaySink(
            SinkSettings(
                canary_url=canary.url,
                stable_url=stable.url,
                model_name=MODEL,
                inference_service=IDENTITY.inference_service,
                namespace=IDENTITY.namespace,
            )
        ) as sink,
        local_prometheus(work, [sink.url.removeprefix("http://")]) as prometheus,
    ):
        # Counts made before Prometheus's first scrape would be missing from every window.
        deadline = time.monotonic() + 120  # Prometheus starts slowly while images build beside the tests
        while prometheus.scalar('count(shadow_pairs_total{inferenceservice="clf"})') != len(Comparison):
            assert time.monotonic() < deadline, "Prometheus did not scrape the sink"
            time.sleep(0.5)
        yield ShadowLab(stable, canary, canary_behaviour, sink, prometheus)


def v2_request(rng: random.Random) -> bytes:
    row = [round(rng.uniform(0, 1.5), 3) for _ in range(4)]
    return json.dumps({"inputs": [{"name": "input_0", "shape": [1, 4], "datatype": "FP64", "data": row}]}).encode()


def serve_and_log(lab: ShadowLab, count: int, seed: int) -> None:
    """Send ``count`` requests to stable and log each exchange to the sink as KServe's agent would."""
    rng = random.Random(seed)
    session = requests.Session()
    for index in range(count):
        body = v2_request(rng)
        response = session.post(
            f"{lab.stable.url}/v2/models/{MODEL}/infer", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        statuses = log_exchange(session, lab.sink.url, IDENTITY, body, response.content, response_first=index % 2 == 1)
        assert statuses == [200, 200]


def replayed(lab: ShadowLab) -> int:
    pairs = lab.sink.summary()["pairs"]
    return int(sum(pairs.values()))


def judge(lab: ShadowLab, start: float, timeout_s: float = 20) -> Verdict:
    """Tick the shadow verdict until it decides (Prometheus needs a scrape or two to see the last counts)."""
    source = PrometheusSource(lab.prometheus.url)
    deadline = time.monotonic() + timeout_s
    while True:
        verdict = shadow_verdict(source, CONFIG, start, time.time(), selector={"inferenceservice": "clf"})
        if verdict.outcome in (Outcome.PASS, Outcome.FAIL) or time.monotonic() > deadline:
            return verdict
        time.sleep(1)


def run_phase(lab: ShadowLab, behaviour: str, count: int, seed: int) -> Verdict:
    lab.canary_behaviour.write_text(behaviour, encoding="utf-8")
    time.sleep(2)  # the previous phase's last counts are scraped before this window starts
    start, before = time.time(), replayed(lab)
    serve_and_log(lab, count, seed)
    deadline = time.monotonic() + 60
    while replayed(lab) < before + count:
        assert time.monotonic() < deadline, lab.sink.summary()
        time.sleep(0.2)
    return judge(lab, start)


def test_an_identical_canary_passes_the_shadow_stage(lab: ShadowLab) -> None:
    verdict = run_phase(lab, "good", 80, seed=1)
    assert verdict.outcome is Outcome.PASS, verdict.reasons
    assert [check.name for check in verdict.checks] == ["agreement", "canary_errors", "latency"]
    # Decided as soon as the minimum sample agreed (Prometheus may not have scraped the last pairs yet).
    agree = verdict.counts["shadow"]["agree"]
    assert agree is not None
    assert CONFIG.shadow.min_pairs <= agree <= 85
    assert verdict.counts["shadow"]["disagree"] == 0
    assert lab.sink.summary()["dropped"] == {"queue_full": 0, "pending_full": 0, "unpaired": 0}


def test_changed_predictions_fail_the_shadow_stage(lab: ShadowLab) -> None:
    verdict = run_phase(lab, "changed", 80, seed=2)
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reasons[0].startswith("agreement 0.000 (0 of ")
    assert verdict.reasons[0].endswith("minimum 0.9: the canary answers differently")


def test_a_slow_canary_fails_on_replay_latency(lab: ShadowLab) -> None:
    verdict = run_phase(lab, "latency", 60, seed=3)
    assert {check.name: check.outcome for check in verdict.checks} == {
        "agreement": Outcome.PASS,
        "canary_errors": Outcome.PASS,
        "latency": Outcome.FAIL,
    }


def test_canary_answers_reach_nobody_and_metrics_are_exported(lab: ShadowLab) -> None:
    rng = random.Random(4)
    body = v2_request(rng)
    response = requests.post(
        lab.sink.url,
        data=body,
        headers={
            "Ce-Specversion": "1.0",
            "Ce-Id": "r-1",
            "Ce-Type": "org.kubeflow.serving.inference.request",
            "Ce-Source": "http://localhost:9081/",
            "Ce-Inferenceservicename": "clf",
            "Ce-Namespace": "shadow-test",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    # The logger gets an acknowledgement, never the canary's answer.
    assert (response.status_code, response.text) == (200, "accepted")
    metrics = requests.get(f"{lab.sink.url}/metrics", timeout=10).text
    assert 'shadow_pairs_total{inferenceservice="clf",namespace="shadow-test",result="agree"}' in metrics
    assert 'shadow_events_total{type="org.kubeflow.serving.inference.request"}' in metrics


def test_the_sink_ignores_its_own_replays_other_services_and_bad_events(lab: ShadowLab) -> None:
    session = requests.Session()
    body = v2_request(random.Random(5))
    loop = log_exchange(session, lab.sink.url, IDENTITY, body, b"{}", event_id="shadow-abc")
    other = log_exchange(session, lab.sink.url, LoggerIdentity("other", "shadow-test"), body, b"{}")
    assert loop == other == [200, 200]
    bad = session.post(lab.sink.url, data=body, headers={"Ce-Id": "x", "Ce-Type": "something"}, timeout=10)
    assert bad.status_code == 400
    ignored = {
        series: value
        for series, value in scrape_sink(lab.sink).items()
        if series.startswith("shadow_ignored_events_total")
    }
    assert ignored == {
        'shadow_ignored_events_total{reason="replayed"}': 2.0,
        'shadow_ignored_events_total{reason="other_service"}': 2.0,
        'shadow_ignored_events_total{reason="invalid"}': 1.0,
    }


def scrape_sink(sink: ReplaySink) -> dict[str, float]:
    """The sink's own metrics as ``{series: value}``."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(requests.get(f"{sink.url}/metrics", timeout=10).text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_overload_drops_and_counts_instead_of_queueing_without_bound(lab: ShadowLab) -> None:
    # A canary that accepts connections and never answers: every replay waits for its timeout.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    settings = SinkSettings(
        canary_url=f"http://127.0.0.1:{hung.getsockname()[1]}",
        model_name=MODEL,
        queue_size=2,
        workers=1,
        replay_timeout_seconds=1,
    )
    try:
        with ReplaySink(settings) as sink:
            session = requests.Session()
            rng = random.Random(6)
            for _ in range(12):
                assert log_exchange(session, sink.url, IDENTITY, v2_request(rng), b'{"outputs": []}') == [200, 200]
            summary = sink.summary()
            assert summary["dropped"]["queue_full"] >= 8
        final = sink.summary()
        assert final["dropped"]["queue_full"] + final["pairs"]["canary_error"] == 12
    finally:
        hung.close()


def test_unpaired_requests_expire_and_are_counted() -> None:
    settings = SinkSettings(canary_url="http://127.0.0.1:9", model_name=MODEL, pair_timeout_seconds=0.3)
    with ReplaySink(settings) as sink:
        session = requests.Session()
        headers = {
            "Ce-Specversion": "1.0",
            "Ce-Id": "lonely",
            "Ce-Type": "org.kubeflow.serving.inference.request",
            "Content-Type": "application/json",
        }
        assert session.post(sink.url, data=b"{}", headers=headers, timeout=5).status_code == 200
        time.sleep(0.5)
        assert session.post(sink.url, data=b"{}", headers={**headers, "Ce-Id": "next"}, timeout=5).status_code == 200
        assert sink.summary()["dropped"] == {"queue_full": 0, "pending_full": 0, "unpaired": 1}
        assert sink.summary()["pending"] == 1


def test_the_command_line_sink_replays_to_the_canary(lab: ShadowLab, tmp_path: Path) -> None:
    lab.canary_behaviour.write_text("good", encoding="utf-8")
    port_file = tmp_path / "ports.json"
    log_path = tmp_path / "sink.log"
    command = [sys.executable, "-m", "progressive_delivery.replay_sink", "--canary-url", lab.canary.url]
    command += ["--model-name", MODEL, "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        port = wait_for(lambda: port_from_file(port_file), timeout_s=60, what="replay sink", process=process)
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/healthz", timeout=5).text == "ok"
        session = requests.Session()
        body = v2_request(random.Random(7))
        answer = session.post(
            f"{lab.stable.url}/v2/models/{MODEL}/infer", data=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200, answer.text
        assert log_exchange(session, url, IDENTITY, body, answer.content) == [200, 200]

        def agreed() -> bool:
            return requests.get(f"{url}/summary", timeout=5).json()["pairs"]["agree"] == 1

        wait_until(agreed, timeout_s=30, what="the replay", process=process)
        assert requests.get(f"{url}/summary", timeout=5).json()["agreement"] == 1.0
    except Exception as error:
        raise AssertionError(f"{error}\n{log_tail(log_path)}") from error
    finally:
        stop_process(process)
    assert process.returncode == 0, log_tail(log_path)
