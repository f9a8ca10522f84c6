"""One analysis interval: query both arms in Prometheus, run the checks, return a :class:`Verdict`.

API (used by the rollout):

- :class:`Outcome`: ``PASS`` / ``FAIL`` / ``INCONCLUSIVE`` / ``HOLD``;
- :class:`AnalysisConfig`: every analysis knob, ``AnalysisConfig.from_yaml(path)`` for ``--analysis FILE``;
- :class:`~progressive_delivery.queries.Arm`: a name and the labels selecting its series (re-exported);
- :func:`analyse` ``(source, config, stable, canary, start, end) -> Verdict``;
- :class:`Verdict` with ``outcome``, ``reasons``, ``checks``, ``queries``, ``counts`` and ``to_json_dict()``.

The checks (docs/progressive-delivery.md, "Analysis"): error rate and slow-request fraction as
Beta-binomial comparisons with guardrails (:mod:`progressive_delivery.statistics`), a latency-quantile
guard above the minimum sample, and for classifiers the prediction distribution
(:mod:`progressive_delivery.distribution`). Any query that cannot be answered makes its check HOLD.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from progressive_delivery.distribution import compare_distributions
from progressive_delivery.metrics import MetricsSource, QueryResult, QueryStatus
from progressive_delivery.queries import DEFAULT_TEMPLATE_BY_MODE, Arm, QueryTemplates, templates_named
from progressive_delivery.statistics import (
    ArmCounts,
    Outcome,
    ProportionLimits,
    combine,
    compare_latency,
    compare_proportions,
)
from serving_core.errors import InvalidInputError

__all__ = [
    "AnalysisConfig",
    "Arm",
    "CheckResult",
    "Outcome",
    "QueryRecord",
    "Verdict",
    "analyse",
    "inconclusive_budget_left",
]


class ProportionSettings(BaseModel):
    """The regression to catch on one proportion (error rate, slow fraction) and the test's error rates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relative: float = Field(ge=0, description="Relative increase over stable to catch (1.0 = the rate doubles).")
    absolute: float = Field(ge=0, le=1, description="Absolute increase added on top (0.002 = +0.2 points).")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="Tolerated false-rollback probability.")
    beta: float = Field(default=0.05, gt=0, lt=0.5, description="Tolerated missed-regression probability.")
    guardrail: float | None = Field(default=None, gt=0, le=1, description="Absolute ceiling on the canary rate.")

    @model_validator(mode="after")
    def _separable(self) -> ProportionSettings:
        if self.relative == 0 and self.absolute == 0:
            raise ValueError("relative and absolute are both 0: a regression of nothing cannot be told apart")
        return self

    def limits(self) -> ProportionLimits:
        """The statistics module's view."""
        return ProportionLimits(self.relative, self.absolute, self.alpha, self.beta, self.guardrail)


class LatencySettings(BaseModel):
    """The latency-quantile guard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    quantile: float = Field(default=0.99, gt=0, lt=1)
    max_ratio: float = Field(default=1.25, gt=1, description="Canary quantile / stable quantile.")
    max_seconds: float | None = Field(default=None, gt=0, description="Absolute ceiling on the canary quantile.")


class DistributionSettings(BaseModel):
    """The classifier prediction-distribution check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_js_divergence: float = Field(default=0.05, gt=0, le=1)
    min_predictions: int = Field(default=300, ge=1)
    warn_only: bool = False


class ShadowSettings(BaseModel):
    """The shadow stage's gate (:mod:`progressive_delivery.shadow`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_pairs: int = Field(default=200, ge=1, description="Replayed request/response pairs needed to decide.")
    agreement_min: float = Field(default=0.97, gt=0, le=1, description="Required share of agreeing answers.")
    agreement_probability: float = Field(default=0.95, gt=0.5, lt=1)
    max_canary_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_ratio: float = Field(default=1.5, gt=1, description="Canary p95 / stable p95 of replays.")
    numeric_tolerance: float = Field(default=1e-6, ge=0, description="Relative tolerance for numeric answers.")


class AnalysisConfig(BaseModel):
    """Every analysis knob (docs/progressive-delivery.md, "Knobs"); defaults follow canary.md §7.2.

    ``mode`` picks the default query set: ``serverless`` → ``knative``, ``standard`` and ``wrapper`` →
    ``wrapper``. ``template`` names another built-in set; ``queries`` gives a custom one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["serverless", "standard", "wrapper"] = "serverless"
    template: str | None = Field(default=None, description="Built-in query set: wrapper, knative, knative-otel, istio.")
    queries: QueryTemplates | None = Field(default=None, description="Custom PromQL templates ($selector, $window...).")
    interval_seconds: float = Field(default=30.0, gt=0, description="Seconds between analysis ticks.")
    evidence_window: Literal["rollout", "step"] = Field(
        default="rollout",
        description=(
            "Where the window passed to analyse() starts: 'rollout' = when the canary first got traffic (after "
            "warmup), so evidence carries across steps; 'step' = the current step's start."
        ),
    )
    min_requests_per_arm: int = Field(default=300, ge=1, description="Below this on either arm: INCONCLUSIVE.")
    inconclusive_budget_seconds: float = Field(default=2700.0, gt=0, description="Longest a step may stay undecided.")
    slow_threshold_seconds: float = Field(default=0.5, gt=0, description="A request slower than this is slow.")
    error: ProportionSettings = ProportionSettings(relative=1.0, absolute=0.002, guardrail=0.05)
    slow: ProportionSettings = ProportionSettings(relative=1.0, absolute=0.01, guardrail=0.2)
    latency: LatencySettings = LatencySettings()
    distribution: DistributionSettings = DistributionSettings()
    shadow: ShadowSettings = ShadowSettings()
    baseline_error_rate: float = Field(
        default=0.01, gt=0, lt=1, description="Error rate assumed by the time-to-decision forecast."
    )

    @model_validator(mode="after")
    def _known_template(self) -> AnalysisConfig:
        if self.queries is None:
            templates_named(self.template_name)
        return self

    @property
    def template_name(self) -> str:
        """The built-in set in use (``custom`` with ``queries``)."""
        if self.queries is not None:
            return "custom"
        return self.template or DEFAULT_TEMPLATE_BY_MODE[self.mode]

    def query_templates(self) -> QueryTemplates:
        """The templates the analysis renders."""
        return self.queries if self.queries is not None else templates_named(self.template_name)

    @classmethod
    def from_yaml(cls, path: str | Path) -> AnalysisConfig:
        """Load an analysis file (YAML mapping of the fields above; missing fields keep their defaults).

        Raises:
            InvalidInputError: the file is missing, not YAML, or a field is wrong (the message names it).
        """
        location = Path(path)
        try:
            document = yaml.safe_load(location.read_text(encoding="utf-8")) or {}
        except OSError as error:
            raise InvalidInputError(f"cannot read the analysis file {location}: {error}") from error
        except yaml.YAMLError as error:
            raise InvalidInputError(f"the analysis file {location} is not valid YAML: {error}") from error
        if not isinstance(document, dict):
            raise InvalidInputError(f"the analysis file {location} must be a mapping of knobs")
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
            raise InvalidInputError(
                f"the analysis file {location} is invalid: {problems}", hint="see docs/progressive-delivery.md, Knobs"
            ) from error


@dataclass(frozen=True)
class QueryRecord:
    """One query the tick ran, with what came back (the audit trail)."""

    arm: str
    name: str
    query: str
    time: float
    status: str
    value: float | None
    detail: str = ""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, its reason and the numbers behind it."""

    name: str
    outcome: Outcome
    reason: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Verdict:
    """One interval's analysis: the combined outcome and everything that led to it."""

    outcome: Outcome
    reasons: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    queries: tuple[QueryRecord, ...]
    counts: Mapping[str, Mapping[str, float | None]]
    start: float
    end: float

    def to_json_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict (NaN written as ``None``)."""
        encoded: dict[str, Any] = _json_safe(dataclasses.asdict(self))
        return encoded


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


_NO_DATA = {QueryStatus.UNREACHABLE, QueryStatus.UNAVAILABLE}


class _Collector:
    """Runs queries and records them for the verdict."""

    def __init__(self, source: MetricsSource, config: AnalysisConfig, at: float, window: float) -> None:
        self.source = source
        self.config = config
        self.templates = config.query_templates()
        self.at = at
        self.window = window
        self.records: list[QueryRecord] = []
        self.unreachable: QueryResult | None = None

    def run(self, arm: Arm, name: str) -> QueryResult:
        query = self.templates.render(
            name,
            arm,
            window_seconds=self.window,
            slow_seconds=self.config.slow_threshold_seconds,
            quantile=self.config.latency.quantile,
        )
        if self.unreachable is not None:
            # One timeout per tick is enough: a hung Prometheus must not stretch a tick to minutes.
            result = QueryResult(query, self.at, QueryStatus.UNREACHABLE, detail=self.unreachable.detail)
        else:
            result = self.source.instant(query, self.at)
            if result.status is QueryStatus.UNREACHABLE:
                self.unreachable = result
        self.records.append(QueryRecord(arm.name, name, query, self.at, result.status, result.scalar, result.detail))
        return result


@dataclass
class _ArmData:
    requests: float | None = None
    errors: float | None = None
    fast: float | None = None
    missing: tuple[str, ...] = ()

    def error_counts(self) -> ArmCounts | None:
        """Requests and errors, when both were measured."""
        if self.requests is None or self.errors is None:
            return None
        return ArmCounts(self.requests, self.errors)

    def slow_counts(self) -> ArmCounts | None:
        """Requests and slow requests (all minus those in the fast bucket), when both were measured."""
        if self.requests is None or self.fast is None:
            return None
        return ArmCounts(self.requests, max(0.0, self.requests - self.fast))


def _read_arm(collector: _Collector, arm: Arm) -> _ArmData:
    """Requests, errors and fast requests of an arm; ``missing`` says which could not be measured and why."""
    requests = collector.run(arm, "requests")
    errors = collector.run(arm, "errors")
    fast = collector.run(arm, "fast")
    missing: list[str] = []
    for name, result in (("requests", requests), ("errors", errors), ("fast", fast)):
        if result.status in _NO_DATA:
            missing.append(f"{arm.name} {name}: Prometheus {result.status} ({result.detail})")
    if requests.status is QueryStatus.EMPTY or (requests.status is QueryStatus.OK and requests.scalar is None):
        missing.append(f"{arm.name}: no request series match {{{arm.matchers()}}} (not scraped yet, or wrong labels)")
    total = requests.scalar
    # No 5xx series at all is normal for a healthy arm: an empty answer to the error query means zero.
    error_count = errors.scalar if errors.has_data else (0.0 if errors.status is QueryStatus.EMPTY else None)
    fast_count = fast.scalar
    if fast.status is QueryStatus.EMPTY and total:
        missing.append(
            f"{arm.name}: no histogram bucket le={collector.config.slow_threshold_seconds:g} s; "
            "set slow_threshold_seconds to a bucket boundary of the latency histogram"
        )
    elif fast.status is QueryStatus.EMPTY:
        fast_count = 0.0
    return _ArmData(total, error_count, fast_count, tuple(missing))


def _hold(name: str, reasons: tuple[str, ...]) -> CheckResult:
    return CheckResult(name, Outcome.HOLD, f"{name}: no data ({'; '.join(reasons)})", {})


def _proportion_check(
    name: str, canary: ArmCounts, stable: ArmCounts, settings: ProportionSettings, min_requests: int
) -> CheckResult:
    test = compare_proportions(name, canary, stable, settings.limits(), min_requests)
    return CheckResult(
        name,
        test.outcome,
        test.reason,
        {
            "canary_requests": test.canary.requests,
            "canary_events": test.canary.events,
            "canary_rate": test.canary.rate,
            "stable_requests": test.stable.requests,
            "stable_events": test.stable.events,
            "stable_rate": test.stable.rate,
            "regressed_rate": test.regressed_rate,
            "log_bayes_factor": test.log_bayes_factor,
            "canary_lower_bound": test.canary_lower_bound,
        },
    )


def _latency_check(collector: _Collector, stable: Arm, canary: Arm) -> CheckResult:
    settings = collector.config.latency
    unit = collector.templates.latency_unit_seconds
    values = {arm.name: collector.run(arm, "latency_quantile") for arm in (stable, canary)}
    missing = tuple(
        f"{name}: Prometheus {result.status}" for name, result in values.items() if result.status in _NO_DATA
    )
    if missing:
        return _hold("latency", missing)
    canary_value, stable_value = (values[arm.name].scalar for arm in (canary, stable))
    test = compare_latency(
        settings.quantile,
        math.nan if canary_value is None else canary_value * unit,
        math.nan if stable_value is None else stable_value * unit,
        max_ratio=settings.max_ratio,
        max_seconds=settings.max_seconds,
    )
    return CheckResult(
        "latency",
        test.outcome,
        test.reason,
        {"quantile": test.quantile, "canary_seconds": test.canary_seconds, "stable_seconds": test.stable_seconds},
    )


def _class_counts(result: QueryResult) -> dict[str, float]:
    return {sample.labels.get("class", ""): sample.value for sample in result.samples if math.isfinite(sample.value)}


def _distribution_check(collector: _Collector, stable: Arm, canary: Arm) -> CheckResult | None:
    """The class-distribution check, or ``None`` when neither arm counts classes (not a classifier)."""
    settings = collector.config.distribution
    results = {arm.name: collector.run(arm, "predictions") for arm in (stable, canary)}
    missing = tuple(f"{name}: Prometheus {r.status}" for name, r in results.items() if r.status in _NO_DATA)
    if missing:
        return _hold("distribution", missing)
    if not any(result.has_data for result in results.values()):
        return None
    test = compare_distributions(
        _class_counts(results[canary.name]),
        _class_counts(results[stable.name]),
        max_divergence=settings.max_js_divergence,
        min_predictions=settings.min_predictions,
        warn_only=settings.warn_only,
    )
    return CheckResult(
        "distribution",
        test.outcome,
        test.reason,
        {"js_divergence": test.divergence, "canary": test.canary_counts, "stable": test.stable_counts},
    )


def analyse(
    source: MetricsSource, config: AnalysisConfig, stable: Arm, canary: Arm, start: float, end: float
) -> Verdict:
    """Judge the canary against stable over ``[start, end]`` (Unix seconds); see the module docstring.

    Raises:
        InvalidInputError: an empty window, two arms with the same name, or a bad query template.
    """
    if end <= start:
        raise InvalidInputError(f"the analysis window [{start}, {end}] is empty", hint="end must be after start")
    if stable.name == canary.name:
        raise InvalidInputError(f"both arms are named {stable.name!r}", hint="name them e.g. stable and canary")
    collector = _Collector(source, config, end, end - start)
    arms = {arm.name: _read_arm(collector, arm) for arm in (stable, canary)}
    missing = tuple(reason for data in arms.values() for reason in data.missing)
    checks: list[CheckResult] = []
    for name, settings, pairs in (
        ("error", config.error, {arm: data.error_counts() for arm, data in arms.items()}),
        ("slow", config.slow, {arm: data.slow_counts() for arm, data in arms.items()}),
    ):
        canary_pair, stable_pair = pairs[canary.name], pairs[stable.name]
        if missing or canary_pair is None or stable_pair is None:
            checks.append(_hold(name, missing))
        else:
            checks.append(_proportion_check(name, canary_pair, stable_pair, settings, config.min_requests_per_arm))
    enough = not missing and all((data.requests or 0.0) >= config.min_requests_per_arm for data in arms.values())
    # A quantile from a handful of requests is noise: the latency guard starts at the minimum sample.
    if config.latency.enabled and enough:
        checks.append(_latency_check(collector, stable, canary))
    if config.distribution.enabled and collector.templates.predictions is not None:
        distribution = _distribution_check(collector, stable, canary)
        if distribution is not None:
            checks.append(distribution)
    outcome = combine(check.outcome for check in checks)
    reasons = tuple(check.reason for check in checks if check.outcome is not Outcome.PASS) or tuple(
        check.reason for check in checks
    )
    counts = {
        name: {
            "requests": data.requests,
            "errors": data.errors,
            "slow": slow.events if (slow := data.slow_counts()) is not None else None,
        }
        for name, data in arms.items()
    }
    return Verdict(outcome, reasons, tuple(checks), tuple(collector.records), counts, start, end)


def inconclusive_budget_left(undecided_since: float, now: float, config: AnalysisConfig) -> float:
    """Seconds a step may still stay INCONCLUSIVE (or HOLD) before ``inconclusive_policy`` applies; <= 0: spent."""
    return config.inconclusive_budget_seconds - (now - undecided_since)
