"""The shadow stage: judge the canary on replayed live requests before any user traffic reaches it.

The replay sink (:class:`~progressive_delivery.replay_sink.ReplaySink`, re-exported here) replays the
requests KServe's logger posts and counts how the canary's answers compare with stable's; Prometheus
scrapes those counts, and :func:`shadow_verdict` reads them like the live analysis reads the arms:

- **agreement** = agree / (agree + disagree), Beta posterior: FAIL when ``P(agreement < agreement_min) >=
  agreement_probability``, PASS when ``P(agreement >= agreement_min) >= agreement_probability``;
- **canary errors** (the canary failed requests stable answered): FAIL when the lower credible bound of
  their rate is above ``max_canary_error_rate``;
- **latency** (only when the sink also replays to stable): canary p95 / stable p95 <= ``max_latency_ratio``.

Below ``min_pairs`` compared pairs the outcome is INCONCLUSIVE; a query without an answer is HOLD.
Pairs are paired: both answers are to the same request, so a few hundred replays show what an unpaired
live split needs thousands of requests for.

API (used by the rollout): :func:`shadow_verdict` and :class:`ReplaySink` / :class:`SinkSettings`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scipy import stats

from progressive_delivery.analysis import AnalysisConfig, CheckResult, QueryRecord, Verdict
from progressive_delivery.metrics import MetricsSource, QueryResult, QueryStatus
from progressive_delivery.replay_sink import ReplaySink, SinkSettings
from progressive_delivery.shadow_compare import Comparison
from progressive_delivery.statistics import ArmCounts, Outcome, combine
from serving_core.errors import InvalidInputError

__all__ = ["ReplaySink", "SinkSettings", "shadow_queries", "shadow_verdict"]

_LATENCY_QUANTILE = 0.95


def _matchers(selector: Mapping[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in sorted(selector.items()))


def shadow_queries(selector: Mapping[str, str], window_seconds: float) -> dict[str, str]:
    """The PromQL the verdict runs over the sink's metrics (``selector``: e.g. ``{"inferenceservice": "iris"}``)."""
    window = f"{max(1, round(window_seconds))}s"
    matchers = _matchers(selector)
    return {
        "pairs": f"sum by (result) (increase(shadow_pairs_total{{{matchers}}}[{window}]))",
        "latency": (
            f"histogram_quantile({_LATENCY_QUANTILE}, sum by (le, arm) "
            f"(rate(shadow_replay_duration_seconds_bucket{{{matchers}}}[{window}])))"
        ),
    }


def _agreement_check(agree: float, disagree: float, config: AnalysisConfig) -> CheckResult:
    settings = config.shadow
    compared = agree + disagree
    rate = agree / compared if compared else math.nan
    below = float(stats.beta.cdf(settings.agreement_min, agree + 0.5, disagree + 0.5))
    values = {"agree": agree, "disagree": disagree, "agreement": rate, "probability_below_min": below}
    observed = f"agreement {rate:.3f} ({agree:.0f} of {compared:.0f}), minimum {settings.agreement_min:g}"
    if below >= settings.agreement_probability:
        return CheckResult("agreement", Outcome.FAIL, f"{observed}: the canary answers differently", values)
    if 1.0 - below >= settings.agreement_probability:
        return CheckResult("agreement", Outcome.PASS, observed, values)
    return CheckResult("agreement", Outcome.INCONCLUSIVE, f"{observed}, not decided yet", values)


def _error_check(errors: float, total: float, config: AnalysisConfig) -> CheckResult:
    limit = config.shadow.max_canary_error_rate
    lower = ArmCounts(total, errors).lower_bound(0.95)
    values = {"canary_errors": errors, "replayed": total, "lower_bound": lower}
    observed = f"canary errors {errors:.0f} of {total:.0f} replays (limit {limit:g})"
    if lower > limit:
        return CheckResult(
            "canary_errors", Outcome.FAIL, f"{observed}: the canary fails requests stable served", values
        )
    return CheckResult("canary_errors", Outcome.PASS, observed, values)


def _latency_check(result: QueryResult, config: AnalysisConfig) -> CheckResult | None:
    by_arm = {sample.labels.get("arm", ""): sample.value for sample in result.samples}
    canary, stable = by_arm.get("canary", math.nan), by_arm.get("stable", math.nan)
    if math.isnan(stable) or math.isnan(canary) or stable <= 0:
        return None  # the sink replays to stable only when given its URL
    ratio = canary / stable
    values = {"canary_p95_seconds": canary, "stable_p95_seconds": stable, "ratio": ratio}
    observed = f"replay p95 canary {canary:.3f} s vs stable {stable:.3f} s"
    if ratio > config.shadow.max_latency_ratio:
        return CheckResult(
            "latency", Outcome.FAIL, f"{observed}: more than {config.shadow.max_latency_ratio:g}x", values
        )
    return CheckResult("latency", Outcome.PASS, observed, values)


def shadow_verdict(
    source: MetricsSource,
    config: AnalysisConfig,
    start: float,
    end: float,
    *,
    selector: Mapping[str, str] | None = None,
) -> Verdict:
    """Judge the shadow stage over ``[start, end]`` from the sink's metrics in Prometheus.

    Args:
        source: where to query.
        config: ``config.shadow`` holds the gate.
        start: Unix seconds; the sink's counters are read as ``increase()`` over the window.
        end: Unix seconds.
        selector: labels that pick this rollout's sink series, e.g. ``{"inferenceservice": "iris",
            "namespace": "prod"}`` (default: every sink series).

    Raises:
        InvalidInputError: an empty window.
    """
    if end <= start:
        raise InvalidInputError(f"the shadow window [{start}, {end}] is empty", hint="end must be after start")
    queries = shadow_queries(selector or {}, end - start)
    records: list[QueryRecord] = []

    def run(name: str) -> QueryResult:
        result = source.instant(queries[name], end)
        records.append(QueryRecord("shadow", name, queries[name], end, result.status, result.scalar, result.detail))
        return result

    pairs = run("pairs")
    checks: list[CheckResult] = []
    counts: dict[str, float | None] = {result.value: None for result in Comparison}
    if not pairs.has_data:
        why = (
            f"Prometheus {pairs.status}: {pairs.detail}"
            if pairs.status in (QueryStatus.UNREACHABLE, QueryStatus.UNAVAILABLE)
            else "no shadow_pairs_total series; is the sink scraped?"
        )
        checks.append(CheckResult("agreement", Outcome.HOLD, f"shadow: no data ({why})", {}))
    else:
        found = {sample.labels.get("result", ""): sample.value for sample in pairs.samples}
        counts = {result.value: found.get(result.value, 0.0) for result in Comparison}
        agree, disagree = counts[Comparison.AGREE] or 0.0, counts[Comparison.DISAGREE] or 0.0
        errors = counts[Comparison.CANARY_ERROR] or 0.0
        replayed = agree + disagree + errors
        if replayed < config.shadow.min_pairs:
            checks.append(
                CheckResult(
                    "agreement",
                    Outcome.INCONCLUSIVE,
                    f"shadow: {replayed:.0f} replayed pairs, below the minimum of {config.shadow.min_pairs}",
                    {"replayed": replayed},
                )
            )
        else:
            checks.append(_agreement_check(agree, disagree, config))
            checks.append(_error_check(errors, replayed, config))
            latency = run("latency")
            if latency.status in (QueryStatus.UNREACHABLE, QueryStatus.UNAVAILABLE):
                checks.append(CheckResult("latency", Outcome.HOLD, f"latency: Prometheus {latency.status}", {}))
            elif (latency_check := _latency_check(latency, config)) is not None:
                checks.append(latency_check)
    outcome = combine(check.outcome for check in checks)
    reasons = tuple(check.reason for check in checks if check.outcome is not Outcome.PASS) or tuple(
        check.reason for check in checks
    )
    return Verdict(outcome, reasons, tuple(checks), tuple(records), {"shadow": counts}, start, end)
