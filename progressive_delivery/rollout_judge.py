"""The rollout's judge: the analysis (and the shadow gate) over Prometheus, in the shape the state machine takes.

It also keeps every verdict in full (queries, counts, checks) for the report's JSON audit, while the
state annotation keeps only outcomes and counts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from progressive_delivery.analysis import AnalysisConfig, Verdict, analyse
from progressive_delivery.forecast import check_budget
from progressive_delivery.metrics import MetricsSource, QueryStatus
from progressive_delivery.queries import Arm
from progressive_delivery.rollout_state import SHADOW_STAGE
from progressive_delivery.traffic_control import Judgement

# The request rate behind the forecast is read over this many analysis intervals (at least 5 s): recent
# enough to follow a change in traffic, long enough to span several scrapes.
RATE_WINDOW_INTERVALS = 4


@dataclass
class AnalysisJudge:
    """Judges with :func:`~progressive_delivery.analysis.analyse` (steps) and the shadow gate (shadow stage)."""

    source: MetricsSource
    config: AnalysisConfig
    stable: Arm
    canary: Arm
    clock: Callable[[], float] = time.time
    # Labels that pick this rollout's series among the replay sink's (e.g. inferenceservice, namespace).
    shadow_selector: dict[str, str] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def judge(self, stage: str, start: float, end: float) -> Judgement:
        """Run the analysis for ``stage`` over ``[start, end]`` and keep the verdict for the audit."""
        if stage == SHADOW_STAGE:
            from progressive_delivery.shadow import shadow_verdict

            verdict = shadow_verdict(self.source, self.config, start, end, selector=self.shadow_selector or None)
        else:
            verdict = analyse(self.source, self.config, self.stable, self.canary, start, end)
        record = {"stage": stage, **verdict.to_json_dict()}
        self.audit.append(record)
        return Judgement(str(verdict.outcome).upper(), tuple(verdict.reasons), _counts(verdict), record)

    def refuse_step(self, percent: int) -> str | None:
        """Why a ``percent`` step cannot decide within the inconclusive budget at today's request rate."""
        rate = self.request_rate()
        if rate is None:
            # Unknown rate (Prometheus down, no series yet): the step's ticks will HOLD and say why.
            return None
        return check_budget(rate, percent, self.config, refuse=False)

    def request_rate(self) -> float | None:
        """Requests per second over both arms in the last minute, or None when Prometheus cannot say."""
        templates = self.config.query_templates()
        now = self.clock()
        window = max(RATE_WINDOW_INTERVALS * self.config.interval_seconds, 5.0)
        total = 0.0
        for arm in (self.stable, self.canary):
            query = templates.render(
                "requests", arm, window_seconds=window, slow_seconds=self.config.slow_threshold_seconds,
                quantile=self.config.latency.quantile,
            )  # fmt: skip
            result = self.source.instant(query, now)
            if result.status is not QueryStatus.OK and result.status is not QueryStatus.EMPTY:
                return None
            value = result.scalar
            total += 0.0 if value is None or not math.isfinite(value) else value
        return total / window


def _counts(verdict: Verdict) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, float]] = {}
    for arm, values in verdict.counts.items():
        counts[arm] = {key: float(value) for key, value in values.items() if value is not None}
    return counts
