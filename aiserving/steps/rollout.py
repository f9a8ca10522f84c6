"""Steps: drive a progressive rollout of a live InferenceService (CLI, component and exit handler share them).

``KubeTrafficControl`` implements the state machine's ``TrafficControl`` with the existing canary client
(``inference_services.canary``); the analysis reads Prometheus. Everything heavy is imported inside the
functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from progressive_delivery.live_service import STATE_ANNOTATION, LiveService, ServingMode
from progressive_delivery.rollout_settings import RolloutSettings
from progressive_delivery.rollout_state import DEFAULT_STEPS, RolloutState
from serving_core.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from aiserving.steps.artifacts import ArtifactLike
    from inference_services.connection import KubeClients
    from progressive_delivery.analysis import AnalysisConfig
    from progressive_delivery.queries import Arm
    from progressive_delivery.rollout_judge import AnalysisJudge
    from progressive_delivery.rollout_machine import RolloutMachine

log = logging.getLogger(__name__)


class KubeTrafficControl:
    """``TrafficControl`` over one live InferenceService, through ``inference_services``' canary client."""

    def __init__(self, clients: KubeClients, namespace: str, name: str) -> None:
        """Bind to one InferenceService."""
        from inference_services.canary import CanaryControl
        from inference_services.isvc_api import InferenceServiceApi

        self.name = name
        self.api = InferenceServiceApi(clients, namespace)
        self.canary = CanaryControl(clients, namespace)

    def document(self) -> dict[str, Any]:
        """The live InferenceService.

        Raises:
            NotFoundError: it does not exist.
        """
        live = self.api.find(self.name)
        if live is None:
            raise NotFoundError(
                f'InferenceService "{self.api.namespace}/{self.name}" does not exist',
                hint="deploy it first (aiserving deploy CONFIG), or check -n",
            )
        return live

    def read(self) -> LiveService:
        """The live service."""
        return LiveService.from_document(self.document())

    def write_state(self, annotation: str, resource_version: str) -> LiveService:
        """Merge-patch the state annotation; the resourceVersion in the patch makes a stale write a 409."""
        patch = {"metadata": {"resourceVersion": resource_version, "annotations": {STATE_ANNOTATION: annotation}}}
        return LiveService.from_document(self.api.merge_patch(self.name, patch))

    def set_canary_percent(self, percent: int) -> LiveService:
        """Serverless: ``canaryTrafficPercent``; Standard: every ``spec.canary[].trafficPercent``."""
        return LiveService.from_document(self.canary.set_percent(self.name, percent))

    def promote(self) -> LiveService:
        """The canary becomes the stable predictor with all traffic."""
        return LiveService.from_document(self.canary.promote(self.name))

    def rollback(self) -> LiveService:
        """Stable gets all traffic: Serverless pins the canary revision at 0 %; Standard removes ``spec.canary``.

        Unlike ``CanaryControl.rollback`` this never restores an older spec: at 0 % (the shadow stage, or a
        rollback already done) there is no canary "in progress", and going back further is not the rollout's
        call.
        """
        live = self.read()
        if live.mode is ServingMode.SERVERLESS:
            return LiveService.from_document(self.canary.set_percent(self.name, 0))
        if live.canary_percent is None:
            return live
        return LiveService.from_document(self.canary.rollback(self.name))

    def set_shadow_logger(self, url: str | None) -> LiveService:
        """Point KServe's payload logger of the stable predictor at the replay sink (``None`` removes it)."""
        logger = None if url is None else {"mode": "all", "url": url}
        return LiveService.from_document(self.api.merge_patch(self.name, {"spec": {"predictor": {"logger": logger}}}))


@dataclass(frozen=True)
class RolloutOptions:
    """Everything a rollout run needs besides the cluster connection."""

    steps: tuple[int, ...] = DEFAULT_STEPS
    shadow: bool = False
    # Empty: the stored rollout's, else DEFAULT_PROMETHEUS_URL.
    prometheus_url: str = ""
    analysis_file: str | None = None
    # Analysis knobs given inline (a pipeline input), used when there is no file.
    analysis: Mapping[str, Any] = field(default_factory=dict)
    warmup_s: float = 60.0
    step_min_duration_s: float = 300.0
    failure_limit: int = 0
    undecided_policy: Literal["pause", "rollback"] = "pause"
    foreign_change_policy: Literal["pause", "rollback"] = "pause"
    lease_duration_s: float | None = None
    # Standard mode: the canary predictor's name when the spec does not say.
    canary_name: str = "candidate"
    # Label matchers that select each arm's series; empty: derived from the mode (revisions or pods).
    stable_labels: Mapping[str, str] = field(default_factory=dict)
    canary_labels: Mapping[str, str] = field(default_factory=dict)
    shadow_sink_url: str = ""
    dry_run: bool = False


def parse_steps_or_default(text: str) -> tuple[int, ...]:
    """Steps from ``"5,10,25,50"``; empty text gives the default steps.

    Raises:
        InvalidInputError: not rising percents from 1 to 99.
    """
    from progressive_delivery.rollout_state import parse_steps

    return parse_steps(text) if text.strip() else DEFAULT_STEPS


def parse_labels(text: str) -> dict[str, str]:
    """``"job=model,instance=10.0.0.1:8080"`` as a dict.

    Raises:
        InvalidInputError: a pair without ``=``.
    """
    labels: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"label matcher {pair!r} is not NAME=VALUE", hint="e.g. instance=10.0.0.7:8080")
        labels[key.strip()] = value.strip()
    return labels


def load_analysis_config(options: RolloutOptions, mode: ServingMode) -> AnalysisConfig:
    """The analysis file, or the defaults for the service's mode (our wrapper's metrics in Standard mode)."""
    from pydantic import ValidationError

    from progressive_delivery.analysis import AnalysisConfig

    if options.analysis_file:
        return AnalysisConfig.from_yaml(options.analysis_file)
    defaults = {"mode": "serverless" if mode is ServingMode.SERVERLESS else "standard"}
    try:
        return AnalysisConfig.model_validate({**defaults, **options.analysis})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise InvalidInputError(
            f"the analysis knobs are invalid: {problems}", hint="see docs/progressive-delivery.md, Knobs"
        ) from error


def arms_for(document: dict[str, Any], config: AnalysisConfig, options: RolloutOptions) -> tuple[Arm, Arm]:
    """Stable and canary series selectors: given labels, else Knative revisions or Standard-mode pods.

    Raises:
        InvalidInputError: Serverless mode, but the controller has not reported both revisions yet.
    """
    from progressive_delivery.queries import Arm, otel_serverless_arms, serverless_arms, standard_arms

    if options.stable_labels and options.canary_labels:
        return Arm("stable", dict(options.stable_labels)), Arm("canary", dict(options.canary_labels))
    live = LiveService.from_document(document)
    if live.mode is ServingMode.STANDARD:
        # Our deploy names the canary predictor after its content (canary-<hash>): read it from the spec.
        entries = (document.get("spec") or {}).get("canary") or [{}]
        canary_name = str((entries[0].get("predictor") or {}).get("name") or options.canary_name)
        return standard_arms(live.namespace, live.name, canary_name)
    predictor = ((document.get("status") or {}).get("components") or {}).get("predictor") or {}
    stable, canary = predictor.get("latestRolledoutRevision"), predictor.get("latestCreatedRevision")
    if not stable or not canary or stable == canary:
        raise InvalidInputError(
            f"InferenceService {live.namespace}/{live.name} reports no separate stable and canary revisions "
            f"(rolled out {stable!r}, latest {canary!r})",
            hint="deploy the new model as a canary first, and wait until it is ready",
        )
    builder = otel_serverless_arms if config.template_name == "knative-otel" else serverless_arms
    return builder(live.namespace, str(stable), str(canary))


def settings_for(options: RolloutOptions, config: AnalysisConfig) -> RolloutSettings:
    """The state machine's knobs: the tick and the undecided budget come from the analysis config.

    Raises:
        InvalidInputError: a knob out of range or an unknown policy.
    """
    from pydantic import ValidationError

    try:
        return _settings(options, config)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise InvalidInputError(
            f"the rollout settings are invalid: {problems}", hint="policies are pause or rollback; times are seconds"
        ) from error


def _settings(options: RolloutOptions, config: AnalysisConfig) -> RolloutSettings:
    return RolloutSettings(
        interval_s=config.interval_seconds, warmup_s=options.warmup_s,
        step_min_duration_s=options.step_min_duration_s, undecided_budget_s=config.inconclusive_budget_seconds,
        undecided_policy=options.undecided_policy, failure_limit=options.failure_limit,
        foreign_change_policy=options.foreign_change_policy,
        # A driver that misses three ticks is taken for dead.
        lease_duration_s=options.lease_duration_s or max(3 * config.interval_seconds, 10.0),
        shadow_sink_url=options.shadow_sink_url, evidence_window=config.evidence_window,
    )  # fmt: skip


DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"


@dataclass
class Rollout:
    """A machine bound to one service, with the judge whose audit the report writes."""

    machine: RolloutMachine
    judge: AnalysisJudge
    control: KubeTrafficControl
    driver: dict[str, Any]


def bind(
    clients: KubeClients, namespace: str, name: str, options: RolloutOptions, holder: str,
    clock: Callable[[], float] = time.time, stored: RolloutState | None = None,
) -> Rollout:  # fmt: skip
    """Build the control, the judge over Prometheus and the state machine for one service.

    A ``stored`` rollout brings its own analysis knobs, arm selectors and loop settings (what its starter
    chose); only a given Prometheus URL replaces the stored one.
    """
    import dataclasses

    from progressive_delivery.analysis import AnalysisConfig
    from progressive_delivery.metrics import PrometheusSource
    from progressive_delivery.queries import Arm
    from progressive_delivery.rollout_judge import AnalysisJudge
    from progressive_delivery.rollout_machine import RolloutMachine

    control = KubeTrafficControl(clients, namespace, name)
    if stored is not None and stored.driver:
        config = AnalysisConfig.model_validate(stored.driver["analysis"])
        stable, canary = Arm(**stored.driver["stable"]), Arm(**stored.driver["canary"])
        settings = RolloutSettings.model_validate(stored.driver["settings"])
        url = options.prometheus_url or stored.driver["prometheus_url"]
    else:
        document = control.document()
        mode = LiveService.from_document(document).mode
        config = load_analysis_config(options, mode)
        stable, canary = arms_for(document, config, options)
        settings = settings_for(options, config)
        if mode is ServingMode.SERVERLESS:
            # A logger added to the predictor spec would be a new revision (of the canary's spec), not stable
            # logging: in Serverless mode both revisions are deployed with the logger and the rollout leaves it.
            settings = settings.model_copy(update={"shadow_sink_url": ""})
        url = options.prometheus_url or DEFAULT_PROMETHEUS_URL
    driver = {
        "prometheus_url": url, "analysis": config.model_dump(mode="json"), "settings": settings.model_dump(),
        "stable": dataclasses.asdict(stable), "canary": dataclasses.asdict(canary),
    }  # fmt: skip
    judge = AnalysisJudge(
        PrometheusSource(url), config, stable, canary, clock=clock,
        shadow_selector={"inferenceservice": name, "namespace": namespace},
    )  # fmt: skip
    machine = RolloutMachine(control, judge, settings, holder, clock, dry_run=options.dry_run)
    return Rollout(machine, judge, control, driver)


def new_run_id() -> str:
    """A run ID for a rollout started from the CLI (pipelines use their run's ID)."""
    return f"cli-{uuid.uuid4().hex[:12]}"


def run_rollout(
    clients: KubeClients, namespace: str, name: str, options: RolloutOptions, run_id: str,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[RolloutState, list[dict[str, Any]]]:  # fmt: skip
    """Start (or continue this run's) rollout and drive it until it is promoted, rolled back or paused.

    Returns:
        The final state and the full audit of every analysis tick.
    """
    from progressive_delivery.rollout_machine import default_holder
    from progressive_delivery.rollout_state import RolloutPlan

    plan = RolloutPlan(steps=options.steps, shadow=options.shadow)
    rollout = bind(clients, namespace, name, options, default_holder(run_id))
    state = rollout.machine.start(run_id, plan, rollout.driver)
    if state.phase.value == "running":
        state = rollout.machine.run(sleep)
    return state, rollout.judge.audit


def rollout_command(
    clients: KubeClients, namespace: str, name: str, action: str, options: RolloutOptions, *, reason: str = "",
    force: bool = False, sleep: Callable[[float], None] = time.sleep,
) -> tuple[RolloutState, list[dict[str, Any]]]:  # fmt: skip
    """``pause``, ``resume`` (then drive it on) or ``abort`` a rollout; ``status`` reads it.

    Raises:
        InvalidInputError: an unknown action, or no rollout on the service.
    """
    from progressive_delivery.rollout_machine import default_holder

    if action == "status":
        return read_state(clients, namespace, name), []
    if action not in ("pause", "resume", "abort"):
        raise InvalidInputError(f"rollout action {action!r} is unknown", hint="use status, pause, resume or abort")
    state = read_state(clients, namespace, name)
    rollout = bind(clients, namespace, name, options, default_holder(state.run_id), stored=state)
    if action == "pause":
        return rollout.machine.pause(reason or "paused by a person"), []
    if action == "abort":
        return rollout.machine.abort(reason or "aborted by a person"), []
    state = rollout.machine.resume(force=force)
    if state.phase.value == "running":
        state = rollout.machine.run(sleep)
    return state, rollout.judge.audit


def read_state(clients: KubeClients, namespace: str, name: str) -> RolloutState:
    """The rollout state stored on the service.

    Raises:
        NotFoundError: the service has no rollout.
    """
    live = KubeTrafficControl(clients, namespace, name).read()
    if not live.state_annotation:
        raise NotFoundError(
            f"InferenceService {namespace}/{name} has no rollout", hint="start one with aiserving rollout start CONFIG"
        )
    return RolloutState.from_annotation(live.state_annotation, f"{namespace}/{name}")


def rollout_exit_step(
    name: str, namespace: str, target: str, pipeline_run: str, state: str, error_message: str,
    clients: KubeClients | None = None,
) -> str:  # fmt: skip
    """The exit handler: roll back the unfinished rollout THIS run started when the run did not succeed.

    A rollout another run or a person started, or one already promoted, rolled back or paused by a
    decision, is left alone.
    """
    from aiserving.steps.deploy import check_target
    from inference_services.connection import connect
    from progressive_delivery.rollout_machine import RolloutMachine, default_holder

    if state == "SUCCEEDED":
        return "nothing: the run succeeded"
    if check_target(target) == "render":
        return "nothing to roll back: target render changes no live object"
    control = KubeTrafficControl(clients or connect(), namespace, name)
    document = control.api.find(name)
    if document is None:
        return "nothing to roll back: the InferenceService does not exist"
    annotation = LiveService.from_document(document).state_annotation
    stored = RolloutState.from_annotation(annotation, f"{namespace}/{name}") if annotation else None
    # The stored settings say whether the rollout turned the shadow logger on (and must turn it off).
    settings = RolloutSettings.model_validate(stored.driver["settings"]) if stored and stored.driver else None
    machine = RolloutMachine(
        control, _NoJudge(), settings or RolloutSettings(), default_holder(pipeline_run), time.time
    )
    done = machine.roll_back_if_started_by(pipeline_run, f"the pipeline run ended {state}: {error_message}")
    if done is None:
        return "nothing to roll back: no unfinished rollout of this run"
    return f"rolled back {namespace}/{name}: the stable predictor serves 100%"


class _NoJudge:
    """The exit handler only rolls back; it never judges."""

    def judge(self, stage: str, start: float, end: float) -> Any:
        raise AssertionError("the exit handler does not analyse")

    def refuse_step(self, percent: int) -> str | None:
        return None


def progressive_rollout_step(
    isvc_name: str, namespace: str, target: str, pipeline_run: str, options: RolloutOptions, report: ArtifactLike,
    audit: ArtifactLike,
) -> str:  # fmt: skip
    """The component's work: drive the rollout to a decision, write the report and the audit, return the phase.

    A rollout that ends paused or rolled back is a decision, not a step failure: the run succeeds and
    says which (a failing step would make the exit handler roll back a pause a person should look at).

    Raises:
        UnsupportedError: target render (a rollout needs a live service).
    """
    from pathlib import Path

    from aiserving.steps.deploy import check_target
    from aiserving.steps.rollout_report import write_rollout_report
    from inference_services.connection import connect
    from serving_core.errors import UnsupportedError

    if check_target(target) == "render":
        raise UnsupportedError(
            "a progressive rollout steps a live InferenceService; target render has none",
            hint="run with target cluster, or rollout_strategy fixed",
        )
    state, ticks = run_rollout(connect(), namespace, isvc_name, options, pipeline_run)
    write_rollout_report(state, ticks, Path(report.path), Path(audit.path))
    report.metadata.update({"phase": state.phase.value, "stage": state.stage, "message": state.message})
    return state.phase.value
