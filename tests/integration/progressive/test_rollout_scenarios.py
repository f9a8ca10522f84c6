"""End-to-end rollouts: the test API server, a real Prometheus scraping two real model wrappers, real load.

Each scenario gets a fresh InferenceService (v1 stable at 100 %, v2 canary at 0 %), sets what the canary
process does, runs a bounded load split by the weights the controller serves, and drives the rollout
through the same code the CLI and the pipeline component use. Every scenario asserts the final traffic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from aiserving.cli.main import main
from aiserving.steps.rollout import RolloutOptions, read_state, rollout_command, run_rollout
from aiserving.steps.rollout_report import write_rollout_report
from inference_services.canary import CanaryControl
from progressive_delivery.analysis import AnalysisConfig, Arm
from progressive_delivery.metrics import PrometheusSource
from progressive_delivery.rollout_judge import AnalysisJudge
from progressive_delivery.rollout_state import Phase, RolloutState
from serving_core.processes import wait_until
from tests.conftest import REPO_ROOT
from tests.integration.progressive.conftest import CANARY_URI, STABLE_URI, CanaryLab


def _eventually(check: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _options(lab: CanaryLab, **changes: object) -> RolloutOptions:
    options = RolloutOptions(
        steps=(25, 50), prometheus_url=lab.prometheus.url, analysis_file=str(lab.analysis_file), warmup_s=1.0,
        step_min_duration_s=2.0, failure_limit=0, stable_labels=lab.labels(lab.stable),
        canary_labels=lab.labels(lab.canary), lease_duration_s=3.0,
    )  # fmt: skip
    return replace(options, **changes)  # type: ignore[arg-type]


def _rollout(
    lab: CanaryLab,
    name: str,
    run_id: str,
    *,
    report: bool = False,
    traffic_seen: Callable[[float], bool] = lambda rate: rate >= 15.0,
    **changes: object,
) -> RolloutState:
    # Wait until the request rate Prometheus reports is the one the scenario sets up (live traffic scraped,
    # or an earlier scenario's traffic gone from the window): a fixed sleep is too short on a loaded machine.
    judge = AnalysisJudge(
        PrometheusSource(lab.prometheus.url), AnalysisConfig.from_yaml(lab.analysis_file),
        Arm("stable", lab.labels(lab.stable)), Arm("canary", lab.labels(lab.canary)),
    )  # fmt: skip
    _eventually(lambda: traffic_seen(judge.request_rate() or 0.0), "Prometheus to see the scenario's traffic", 90)
    state, ticks = run_rollout(lab.clients, lab.namespace, name, _options(lab, **changes), run_id)
    assert len(ticks) == len(state.decisions)  # every decision has its full audit record
    if report:
        page = write_rollout_report(state, ticks, lab.work / name / "report.md", lab.work / name / "audit.json")
        assert 'src="data:image/png;base64,' in page.read_text()
        audit = json.loads((lab.work / name / "audit.json").read_text())
        queries = [query["query"] for tick in audit["ticks"] for query in tick["queries"]]
        canary_series = f'instance="127.0.0.1:{lab.canary.http_port}"'
        assert any(canary_series in query for query in queries), (state.phase, state.message)
    return state


@pytest.mark.parametrize("mode", ["knative", "standard"])
def test_good_canary_is_promoted(lab: CanaryLab, mode: str) -> None:
    lab.set_behaviour("good")
    name = lab.deploy_canary(mode)
    with lab.load(name):
        state = _rollout(lab, name, f"good-{mode}", report=True)

    assert (state.phase, state.message) == (Phase.PROMOTED, "promoted: the canary serves 100%")
    assert [(d.stage, d.action) for d in state.decisions if d.action in ("step", "promote")] == [
        ("25", "step"), ("50", "promote")
    ]  # fmt: skip
    assert "FAIL" not in {d.outcome for d in state.decisions}
    assert [point.percent for point in state.weights] == [0, 25, 50, 100]
    _eventually(lambda: lab.served(name) == {CANARY_URI: 100}, "the canary serving 100%", 10)
    # The same picture as the report's, from the state stored on the InferenceService.
    plot = lab.work / f"{name}.png"
    status = ["rollout", "status", name, "-n", lab.namespace, "--kubeconfig", str(lab.cluster.kubeconfig)]
    assert main([*status, "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(("behaviour", "failed_check"), [("errors", "error"), ("latency", "slow")])
def test_bad_canary_is_rolled_back(lab: CanaryLab, behaviour: str, failed_check: str) -> None:
    lab.set_behaviour(behaviour)
    name = lab.deploy_canary("knative")
    with lab.load(name):
        state = _rollout(lab, name, f"bad-{behaviour}")

    assert state.phase is Phase.ROLLED_BACK
    assert state.stage == "25"
    assert state.message.startswith("rolled back: stage 25 failed: ")
    assert failed_check in state.message
    assert state.decisions[-1].outcome == "FAIL"
    _eventually(lambda: lab.served(name) == {STABLE_URI: 100}, "stable serving 100%", 10)


def test_changed_predictions_stop_the_rollout_at_the_shadow_stage(lab: CanaryLab) -> None:
    lab.set_behaviour("changed")
    name = lab.deploy_canary("standard")
    with lab.load(name):
        state = _rollout(lab, name, "shadow-changed", shadow=True, shadow_sink_url=lab.sink.url)

    assert (state.phase, state.stage) == (Phase.ROLLED_BACK, "shadow")
    assert state.message.startswith("rolled back: stage shadow failed: ")
    assert "agreement" in state.message
    # No user request ever reached the canary; the logger is off again and the canary entry is gone.
    assert [point.percent for point in state.weights] == [0, 0]
    document = lab.clients.custom.get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", lab.namespace, "inferenceservices", name
    )
    assert "logger" not in document["spec"]["predictor"]
    assert "canary" not in document["spec"]
    assert lab.served(name) == {STABLE_URI: 100}


def test_low_traffic_pauses_before_stepping_with_a_clear_message(lab: CanaryLab) -> None:
    lab.set_behaviour("good")
    name = lab.deploy_canary("knative")
    with lab.load(name, rate_per_s=0.5):
        # The wrappers are shared: the previous scenario's traffic must leave the forecast's rate window.
        state = _rollout(lab, name, "low-traffic", traffic_seen=lambda rate: rate < 2.0)

    assert state.phase is Phase.PAUSED
    assert state.message.startswith("paused before stage 25: at ")
    assert "requests/s a 25 % step needs about" in state.message
    assert lab.served(name) == {STABLE_URI: 100}


def test_unreachable_prometheus_holds_and_never_promotes(lab: CanaryLab) -> None:
    lab.set_behaviour("good")
    name = lab.deploy_canary("knative")
    with lab.load(name):
        state = _rollout(lab, name, "no-prometheus", prometheus_url="http://127.0.0.1:9")

    assert state.phase is Phase.PAUSED
    assert {d.outcome for d in state.decisions} == {"HOLD"}
    assert "past the 8s budget" in state.message
    assert "unreachable" in state.message
    # Held at the first step: neither promoted nor rolled back.
    assert lab.served(name) == {STABLE_URI: 75, CANARY_URI: 25}


def test_a_person_changing_the_weight_mid_rollout_pauses_it(lab: CanaryLab) -> None:
    lab.set_behaviour("good")
    name = lab.deploy_canary("knative")
    result: list[RolloutState] = []
    with lab.load(name):
        driver = threading.Thread(
            target=lambda: result.append(_rollout(lab, name, "human-edit", step_min_duration_s=30.0)), daemon=True
        )
        driver.start()
        _eventually(lambda: lab.served(name).get(CANARY_URI) == 25, "the first step", 20)
        CanaryControl(lab.clients, lab.namespace).set_percent(name, 40)  # a person, by hand
        driver.join(timeout=30)

    assert result
    assert result[0].phase is Phase.PAUSED
    assert result[0].message.startswith("paused: the canary percent is 40% but the rollout wrote 25%")
    # The rollout does not fight: the person's 40 % stays.
    _eventually(lambda: lab.served(name) == {STABLE_URI: 60, CANARY_URI: 40}, "40%")


def _start_cli_and_kill_at_first_step(lab: CanaryLab, name: str, run_id: str) -> None:
    config = lab.work / f"{name}.yaml"
    config.write_text(f"name: {name}\nmodel_format: triton\nstorage_uri: {CANARY_URI}\n", encoding="utf-8")
    command = [
        sys.executable, "-m", "aiserving", "rollout", "start", str(config), "--no-deploy", "-n", lab.namespace,
        "--kubeconfig", str(lab.cluster.kubeconfig), "--steps", "25,50", "--analysis", str(lab.analysis_file),
        "--prometheus", lab.prometheus.url, "--warmup", "1", "--step-duration", "2", "--failure-limit", "0",
        "--lease", "3", "--run-id", run_id,
        "--stable-labels", f"instance=127.0.0.1:{lab.stable.http_port}",
        "--canary-labels", f"instance=127.0.0.1:{lab.canary.http_port}",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    time.sleep(4)  # live traffic before the rollout, for the forecast's rate
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: lab.served(name).get(CANARY_URI) == 25, timeout_s=60, what="the CLI's first step",
                   process=process)  # fmt: skip
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@dataclass(frozen=True)
class FinalStatus:
    """What KFP passes as dsl.PipelineTaskFinalStatus."""

    state: str
    error_message: str = ""


def test_killed_run_is_rolled_back_by_its_exit_handler(lab: CanaryLab, monkeypatch: pytest.MonkeyPatch) -> None:
    from components.rollback_rollout_on_failure import rollback_rollout_on_failure

    monkeypatch.setenv("KUBECONFIG", str(lab.cluster.kubeconfig))
    lab.set_behaviour("good")
    name = lab.deploy_canary("knative")

    def exit_handler(run: str, state: str) -> str:
        return rollback_rollout_on_failure.python_func(
            isvc_name=name, namespace=lab.namespace, target="cluster", pipeline_run=run,
            status=FinalStatus(state, "pod killed"),
        )  # fmt: skip

    with lab.load(name):
        _start_cli_and_kill_at_first_step(lab, name, "run-killed-exit")
        assert exit_handler("some-other-run", "FAILED") == "nothing to roll back: no unfinished rollout of this run"
        assert lab.served(name) == {STABLE_URI: 75, CANARY_URI: 25}
        said = exit_handler("run-killed-exit", "FAILED")

    assert said == f"rolled back {lab.namespace}/{name}: the stable predictor serves 100%"
    state = read_state(lab.clients, lab.namespace, name)
    assert (state.phase, state.message) == (
        Phase.ROLLED_BACK, "rolled back: the pipeline run ended FAILED: pod killed"
    )  # fmt: skip
    _eventually(lambda: lab.served(name) == {STABLE_URI: 100}, "stable serving 100%", 10)


def test_killed_run_is_continued_by_resume(lab: CanaryLab) -> None:
    lab.set_behaviour("good")
    name = lab.deploy_canary("standard")
    with lab.load(name):
        _start_cli_and_kill_at_first_step(lab, name, "run-killed-resume")
        time.sleep(3.5)  # the dead driver's lease runs out
        state, _ = rollout_command(lab.clients, lab.namespace, name, "resume", RolloutOptions())

    assert state.phase is Phase.PROMOTED
    assert state.run_id == "run-killed-resume"
    _eventually(lambda: lab.served(name) == {CANARY_URI: 100}, "the canary serving 100%", 10)
