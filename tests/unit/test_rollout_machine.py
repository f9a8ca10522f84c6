"""The rollout state machine over an in-memory InferenceService in both KServe modes, with a scripted judge."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from progressive_delivery.live_service import STATE_ANNOTATION, LiveService, ServingMode
from progressive_delivery.rollout_machine import RolloutMachine
from progressive_delivery.rollout_settings import RolloutSettings
from progressive_delivery.rollout_state import (
    Action,
    Phase,
    RolloutPlan,
    RolloutState,
    WeightPoint,
    parse_steps,
)
from progressive_delivery.traffic_control import Judgement
from serving_core.errors import ConflictError, InvalidInputError

STABLE = "s3://models/iris/1"
CANARY = "s3://models/iris/2"
SETTINGS = RolloutSettings(
    interval_s=1, warmup_s=0, step_min_duration_s=2, undecided_budget_s=5, failure_limit=0, lease_duration_s=10,
    shadow_sink_url="http://replay-sink.ai-serving.svc/events",
)  # fmt: skip


@dataclass
class FakeService:
    """One InferenceService document, changed the way KServe's API server and controller change it."""

    mode: ServingMode
    document: dict[str, Any] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        annotation = "Serverless" if self.mode is ServingMode.SERVERLESS else "RawDeployment"
        predictor: dict[str, Any] = {"model": {"storageUri": CANARY}}
        spec: dict[str, Any] = {"predictor": predictor}
        if self.mode is ServingMode.SERVERLESS:
            predictor["canaryTrafficPercent"] = 0
        else:
            predictor["model"]["storageUri"] = STABLE
            predictor["name"] = "predictor"
            spec["canary"] = [
                {"trafficPercent": 0, "predictor": {"name": "candidate", "model": {"storageUri": CANARY}}}
            ]
        self.document = {
            "metadata": {"name": "iris", "namespace": "ai", "generation": 1, "resourceVersion": "1",
                         "annotations": {"serving.kserve.io/deploymentMode": annotation}},
            "spec": spec,
        }  # fmt: skip
        self._reconcile()

    # -- what the API server and the controller do ---------------------------------------------------------

    def _change(self, mutate: Callable[[dict[str, Any]], None], *, what: str) -> LiveService:
        before = copy.deepcopy(self.document["spec"])
        mutate(self.document)
        meta = self.document["metadata"]
        if self.document["spec"] != before:
            meta["generation"] += 1
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        self.writes.append(what)
        self._reconcile()
        return self.read()

    def _reconcile(self) -> None:
        spec = self.document["spec"]
        if self.mode is ServingMode.SERVERLESS:
            percent = spec["predictor"].get("canaryTrafficPercent")
            split = percent is not None and percent < 100
            traffic = (
                [{"revisionName": "iris-predictor-00002", "percent": percent, "latestRevision": True},
                 {"revisionName": "iris-predictor-00001", "percent": 100 - percent, "latestRevision": False}]
                if split else [{"revisionName": "iris-predictor-00002", "percent": 100, "latestRevision": True}]
            )  # fmt: skip
            predictor_status = {"latestCreatedRevision": "iris-predictor-00002",
                                "latestReadyRevision": "iris-predictor-00002", "traffic": traffic}  # fmt: skip
            status: dict[str, Any] = {"deploymentMode": "Serverless", "components": {"predictor": predictor_status}}
        else:
            status = {"deploymentMode": "RawDeployment"}
            if spec.get("canary"):
                entry = spec["canary"][0]
                status["canaryStatuses"] = [
                    {"name": entry["predictor"]["name"], "ready": True, "trafficPercent": entry["trafficPercent"]}
                ]
        status["observedGeneration"] = self.document["metadata"]["generation"]
        self.document["status"] = status

    # -- TrafficControl -------------------------------------------------------------------------------------

    def read(self) -> LiveService:
        return LiveService.from_document(copy.deepcopy(self.document))

    def write_state(self, annotation: str, resource_version: str) -> LiveService:
        if resource_version != self.document["metadata"]["resourceVersion"]:
            raise ConflictError(f"resourceVersion {resource_version} is stale")
        return self._change(lambda doc: doc["metadata"]["annotations"].__setitem__(STATE_ANNOTATION, annotation),
                            what="state")  # fmt: skip

    def set_canary_percent(self, percent: int) -> LiveService:
        def mutate(doc: dict[str, Any]) -> None:
            if self.mode is ServingMode.SERVERLESS:
                doc["spec"]["predictor"]["canaryTrafficPercent"] = percent
            else:
                doc["spec"]["canary"][0]["trafficPercent"] = percent

        return self._change(mutate, what=f"percent {percent}")

    def promote(self) -> LiveService:
        def mutate(doc: dict[str, Any]) -> None:
            if self.mode is ServingMode.SERVERLESS:
                doc["spec"]["predictor"].pop("canaryTrafficPercent")
            else:
                entry = doc["spec"].pop("canary")[0]
                doc["spec"]["predictor"] = {**entry["predictor"], "name": doc["spec"]["predictor"]["name"]}

        return self._change(mutate, what="promote")

    def rollback(self) -> LiveService:
        def mutate(doc: dict[str, Any]) -> None:
            if self.mode is ServingMode.SERVERLESS:
                doc["spec"]["predictor"]["canaryTrafficPercent"] = 0
            else:
                doc["spec"].pop("canary", None)

        return self._change(mutate, what="rollback")

    def set_shadow_logger(self, url: str | None) -> LiveService:
        def mutate(doc: dict[str, Any]) -> None:
            if url is None:
                doc["spec"]["predictor"].pop("logger", None)
            else:
                doc["spec"]["predictor"]["logger"] = {"mode": "all", "url": url}

        return self._change(mutate, what=f"logger {url}")

    # -- for the asserts ------------------------------------------------------------------------------------

    def state(self) -> RolloutState:
        return RolloutState.model_validate_json(self.document["metadata"]["annotations"][STATE_ANNOTATION])

    def percent(self) -> int | None:
        return self.read().canary_percent

    def actions(self) -> list[str]:
        return [write for write in self.writes if write != "state"]


@dataclass
class ScriptedJudge:
    """Answers each judge call from ``outcomes`` (the last one repeats); records the stages asked about."""

    outcomes: list[str]
    refusal: str | None = None
    asked: list[str] = field(default_factory=list)

    def judge(self, stage: str, start: float, end: float) -> Judgement:
        self.asked.append(stage)
        outcome = self.outcomes[min(len(self.asked) - 1, len(self.outcomes) - 1)]
        counts = {"stable": {"requests": 400.0, "errors": 2.0, "slow": 3.0},
                  "canary": {"requests": 100.0, "errors": 1.0, "slow": 1.0}}  # fmt: skip
        return Judgement(outcome, (f"scripted {outcome}",), counts)

    def refuse_step(self, percent: int) -> str | None:
        return self.refusal


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _machine(service: FakeService, judge: ScriptedJudge, clock: FakeClock, holder: str = "run-1/pod-a",
             settings: RolloutSettings = SETTINGS, dry_run: bool = False) -> RolloutMachine:  # fmt: skip
    return RolloutMachine(service, judge, settings, holder, clock, dry_run=dry_run)


MODES = [ServingMode.SERVERLESS, ServingMode.STANDARD]


@pytest.mark.parametrize("mode", MODES)
def test_passing_canary_goes_through_shadow_and_steps_to_promotion(mode: ServingMode) -> None:
    service, clock = FakeService(mode), FakeClock()
    machine = _machine(service, ScriptedJudge(["PASS"]), clock)
    machine.start("run-1", RolloutPlan(steps=(10, 50), shadow=True))
    final = machine.run(clock.sleep, max_ticks=50)

    assert final.phase is Phase.PROMOTED
    assert service.actions() == [
        f"logger {SETTINGS.shadow_sink_url}",
        "logger None",
        "percent 10",
        "percent 50",
        "promote",
    ]
    assert [(d.stage, d.outcome, d.action) for d in final.decisions] == [
        ("shadow", "PASS", "dwell"), ("shadow", "PASS", "dwell"), ("shadow", "PASS", "step"),
        ("10", "PASS", "dwell"), ("10", "PASS", "step"), ("50", "PASS", "dwell"), ("50", "PASS", "promote"),
    ]  # fmt: skip
    assert [point.percent for point in final.weights] == [0, 10, 50, 100]
    assert final == service.state()
    assert final.lease is None
    assert final.pending is None
    live = service.read()
    assert live.canary_percent is None
    assert live.shadow_logger_url is None
    if mode is ServingMode.STANDARD:
        assert service.document["spec"]["predictor"] == {"name": "predictor", "model": {"storageUri": CANARY}}


@pytest.mark.parametrize("mode", MODES)
def test_failing_step_rolls_back_to_stable(mode: ServingMode) -> None:
    service, clock = FakeService(mode), FakeClock()
    machine = _machine(service, ScriptedJudge(["PASS", "PASS", "PASS", "FAIL"]), clock)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    final = machine.run(clock.sleep, max_ticks=50)

    assert final.phase is Phase.ROLLED_BACK
    assert final.message == "rolled back: stage 50 failed: scripted FAIL"
    assert service.actions() == ["percent 10", "percent 50", "rollback"]
    # Serverless keeps the canary revision pinned at 0 %; Standard removes the canary entry.
    assert service.percent() == (0 if mode is ServingMode.SERVERLESS else None)
    assert service.document["spec"]["predictor"]["model"]["storageUri"] == (
        CANARY if mode is ServingMode.SERVERLESS else STABLE
    )
    assert [point.percent for point in final.weights] == [0, 10, 50, 0]


def test_shadow_failure_stops_before_any_user_traffic_even_with_a_failure_budget() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    settings = SETTINGS.model_copy(update={"failure_limit": 3})
    machine = _machine(service, ScriptedJudge(["FAIL"]), clock, settings=settings)
    machine.start("run-1", RolloutPlan(steps=(10,), shadow=True))
    final = machine.run(clock.sleep, max_ticks=10)

    assert (final.phase, final.stage) == (Phase.ROLLED_BACK, "shadow")
    assert service.actions() == [f"logger {SETTINGS.shadow_sink_url}", "rollback", "logger None"]
    assert service.percent() == 0


def test_failure_limit_tolerates_that_many_failed_ticks() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    settings = SETTINGS.model_copy(update={"failure_limit": 1})
    machine = _machine(service, ScriptedJudge(["FAIL", "PASS", "FAIL"]), clock, settings=settings)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    final = machine.run(clock.sleep, max_ticks=10)

    assert [(d.outcome, d.action) for d in final.decisions] == [("FAIL", "hold"), ("PASS", "dwell"),
                                                                ("FAIL", "rollback")]  # fmt: skip
    assert final.fail_count == 2
    assert final.phase is Phase.ROLLED_BACK


@pytest.mark.parametrize("outcome", ["INCONCLUSIVE", "HOLD"])
def test_undecided_past_the_budget_pauses_and_never_promotes(outcome: str) -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    machine = _machine(service, ScriptedJudge([outcome]), clock)
    machine.start("run-1", RolloutPlan(steps=(10,)))
    final = machine.run(clock.sleep, max_ticks=50)

    assert final.phase is Phase.PAUSED
    assert final.message == f"stage 10 stayed {outcome} for 5s, past the 5s budget: scripted {outcome}"
    assert [d.action for d in final.decisions] == ["wait"] * 5 + ["pause"]
    assert service.percent() == 10
    assert final.lease is None


def test_undecided_past_the_budget_rolls_back_under_the_rollback_policy() -> None:
    service, clock = FakeService(ServingMode.STANDARD), FakeClock()
    settings = SETTINGS.model_copy(update={"undecided_policy": "rollback"})
    final = _run(service, clock, ScriptedJudge(["HOLD"]), settings)
    assert final.phase is Phase.ROLLED_BACK
    assert service.percent() is None


def _run(service: FakeService, clock: FakeClock, judge: ScriptedJudge, settings: RolloutSettings) -> RolloutState:
    machine = _machine(service, judge, clock, settings=settings)
    machine.start("run-1", RolloutPlan(steps=(10,)))
    return machine.run(clock.sleep, max_ticks=50)


def test_a_pass_resets_the_undecided_clock() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    judge = ScriptedJudge(["INCONCLUSIVE"] * 4 + ["PASS"] + ["INCONCLUSIVE"] * 4 + ["FAIL"])
    settings = SETTINGS.model_copy(update={"step_min_duration_s": 100})
    final = _run(service, clock, judge, settings)
    assert [d.action for d in final.decisions] == ["wait"] * 4 + ["dwell"] + ["wait"] * 4 + ["rollback"]


@pytest.mark.parametrize("mode", MODES)
def test_a_person_changing_the_percent_pauses_the_rollout_without_a_fight(mode: ServingMode) -> None:
    service, clock = FakeService(mode), FakeClock()
    machine = _machine(service, ScriptedJudge(["INCONCLUSIVE"]), clock)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    machine.tick()
    service.set_canary_percent(30)  # a person, by kubectl
    writes_before = len(service.writes)
    final = machine.run(clock.sleep, max_ticks=5)

    assert final.phase is Phase.PAUSED
    assert final.message.startswith("paused: the canary percent is 30% but the rollout wrote 10%: someone else")
    assert service.writes[writes_before:] == ["state"]
    assert service.percent() == 30


def test_a_spec_edit_pauses_the_rollout() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    machine = _machine(service, ScriptedJudge(["PASS"]), clock)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    service._change(lambda doc: doc["spec"]["predictor"].__setitem__("minReplicas", 2), what="edit")
    final = machine.tick()
    assert final.phase is Phase.PAUSED
    assert "the spec changed (generation 2 → 3)" in final.message


def test_foreign_change_rolls_back_under_the_rollback_policy() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    settings = SETTINGS.model_copy(update={"foreign_change_policy": "rollback"})
    machine = _machine(service, ScriptedJudge(["PASS"]), clock, settings=settings)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    service.set_canary_percent(40)
    assert machine.tick().phase is Phase.ROLLED_BACK
    assert service.percent() == 0


def test_a_second_driver_waits_for_the_lease_then_takes_over() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    first = _machine(service, ScriptedJudge(["PASS"]), clock, holder="run-1/pod-a")
    first.start("run-1", RolloutPlan(steps=(10, 50)))
    second = _machine(service, ScriptedJudge(["PASS"]), clock, holder="run-1/pod-b")
    with pytest.raises(ConflictError, match="driven by run-1/pod-a"):
        second.tick()
    with pytest.raises(ConflictError, match="already has a running rollout started by run 'run-1'"):
        _machine(service, ScriptedJudge(["PASS"]), clock, holder="run-2/x").start("run-2", RolloutPlan())

    clock.sleep(SETTINGS.lease_duration_s)  # pod-a died: its lease runs out
    resumed = second.resume()
    assert resumed.lease is not None
    assert resumed.lease.holder == "run-1/pod-b"
    assert second.run(clock.sleep, max_ticks=20).phase is Phase.PROMOTED


def test_a_write_left_pending_by_a_dead_driver_is_finished_not_taken_for_a_person() -> None:
    service, clock = FakeService(ServingMode.STANDARD), FakeClock()
    first = _machine(service, ScriptedJudge(["PASS"]), clock)
    state = first.start("run-1", RolloutPlan(steps=(10, 50)))
    # The driver recorded "set 50 %" and died before the API call.
    service.write_state(state.evolve(pending=Action.SET_PERCENT, pending_percent=50).to_annotation(),
                        service.read().resource_version)  # fmt: skip
    clock.sleep(SETTINGS.lease_duration_s)
    second = _machine(service, ScriptedJudge(["PASS"]), clock, holder="run-1/pod-b")
    after = second.start("run-1", RolloutPlan(steps=(10, 50)))

    assert service.percent() == 50
    assert after.pending is None
    assert after.phase is Phase.RUNNING
    assert second.tick().phase is Phase.RUNNING  # no foreign change seen


def test_pause_by_a_person_stops_the_driver_and_resume_continues() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    driver = _machine(service, ScriptedJudge(["PASS"]), clock)
    driver.start("run-1", RolloutPlan(steps=(10, 50)))
    person = _machine(service, ScriptedJudge(["PASS"]), clock, holder="alice")
    assert person.pause("paused by alice: checking dashboards").phase is Phase.PAUSED
    asked_before = len(driver.judge.asked)  # type: ignore[attr-defined]
    assert driver.run(clock.sleep, max_ticks=5).message == "paused by alice: checking dashboards"
    assert len(driver.judge.asked) == asked_before  # type: ignore[attr-defined]

    resumed = person.resume()
    assert (resumed.phase, resumed.stage, resumed.lease.holder if resumed.lease else "") == (
        Phase.RUNNING, "10", "alice"
    )  # fmt: skip
    assert person.run(clock.sleep, max_ticks=20).phase is Phase.PROMOTED


def test_abort_rolls_back_and_a_finished_rollout_cannot_resume() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    machine = _machine(service, ScriptedJudge(["PASS"]), clock)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    aborted = machine.abort("aborted by alice")
    assert (aborted.phase, aborted.message, service.percent()) == (
        Phase.ROLLED_BACK,
        "rolled back: aborted by alice",
        0,
    )
    with pytest.raises(InvalidInputError, match="is rolled-back; there is nothing to resume"):
        machine.resume()


def test_the_exit_handler_rolls_back_only_its_own_unfinished_rollout() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    machine = _machine(service, ScriptedJudge(["PASS"]), clock)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    handler = _machine(service, ScriptedJudge(["PASS"]), clock, holder="run-2/exit")
    assert handler.roll_back_if_started_by("run-2", "run failed") is None
    assert service.percent() == 10
    handler = _machine(service, ScriptedJudge(["PASS"]), clock, holder="run-1/exit")
    rolled_back = handler.roll_back_if_started_by("run-1", "the pipeline run ended FAILED")
    assert rolled_back is not None
    assert rolled_back.phase is Phase.ROLLED_BACK
    assert service.percent() == 0
    assert handler.roll_back_if_started_by("run-1", "again") is None


def test_a_step_the_forecast_refuses_pauses_with_the_reason() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    judge = ScriptedJudge(["PASS"], refusal="at 0.2 req/s a decision needs ~1500s, more than the 5s budget")
    state = _machine(service, judge, clock).start("run-1", RolloutPlan(steps=(10,)))
    assert (state.phase, state.message) == (
        Phase.PAUSED, "paused before stage 10: at 0.2 req/s a decision needs ~1500s, more than the 5s budget"
    )  # fmt: skip
    assert service.actions() == []


def test_dry_run_decides_without_writing_anything() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    machine = _machine(service, ScriptedJudge(["PASS"]), clock, dry_run=True)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    final = machine.run(clock.sleep, max_ticks=20)
    assert final.phase is Phase.PROMOTED
    assert final.dry_run
    assert [point.percent for point in final.weights] == [0, 10, 50, 100]
    assert service.writes == []


def test_start_refuses_a_service_without_a_canary() -> None:
    service, clock = FakeService(ServingMode.STANDARD), FakeClock()
    service._change(lambda doc: doc["spec"].pop("canary"), what="no canary")
    with pytest.raises(InvalidInputError, match="has no canary to roll out"):
        _machine(service, ScriptedJudge(["PASS"]), clock).start("run-1", RolloutPlan())


@pytest.mark.parametrize(("evidence", "start_of_last_window"), [("step", 1002.0), ("rollout", 1000.0)])
def test_evidence_window_starts_at_the_step_or_at_the_first_traffic(evidence: str, start_of_last_window: float) -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    windows: list[tuple[str, float]] = []
    judge = ScriptedJudge(["PASS"])
    original = judge.judge

    def recording(stage: str, start: float, end: float) -> Judgement:
        windows.append((stage, start))
        return original(stage, start, end)

    judge.judge = recording  # type: ignore[method-assign]
    settings = SETTINGS.model_copy(update={"evidence_window": evidence})
    machine = _machine(service, judge, clock, settings=settings)
    machine.start("run-1", RolloutPlan(steps=(10, 50)))
    assert machine.run(clock.sleep, max_ticks=20).phase is Phase.PROMOTED
    assert windows[-1] == ("50", start_of_last_window)


def test_warmup_waits_before_judging() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    judge = ScriptedJudge(["PASS"])
    machine = _machine(service, judge, clock, settings=SETTINGS.model_copy(update={"warmup_s": 3}))
    machine.start("run-1", RolloutPlan(steps=(10,)))
    for _ in range(3):
        machine.tick()
        clock.sleep(1)
    assert judge.asked == []
    machine.tick()
    assert judge.asked == ["10"]


def test_state_round_trips_through_the_annotation_and_keeps_only_recent_history() -> None:
    service, clock = FakeService(ServingMode.SERVERLESS), FakeClock()
    machine = _machine(service, ScriptedJudge(["PASS"]), clock)
    state = machine.start("run-1", RolloutPlan(steps=(10,)))
    long = state.evolve(weights=tuple(WeightPoint(at=float(i), percent=10) for i in range(500)))
    stored = json.loads(long.to_annotation())
    assert len(stored["weights"]) == 120
    assert stored["weights"][-1]["at"] == 499.0
    assert RolloutState.from_annotation(state.to_annotation(), "ai/iris") == state
    with pytest.raises(InvalidInputError, match="rollout state annotation on ai/iris cannot be read"):
        RolloutState.from_annotation('{"phase": "running"}', "ai/iris")


@pytest.mark.parametrize(
    ("text", "message"),
    [("5,10,25,50", None), ("50,10", "steps must rise"), ("0,10", "from 1 to 99"), ("5,x", "invalid literal"),
     ("", "at least one")],
)  # fmt: skip
def test_parse_steps(text: str, message: str | None) -> None:
    if message is None:
        assert parse_steps(text) == (5, 10, 25, 50)
    else:
        with pytest.raises(InvalidInputError, match=message):
            parse_steps(text)
