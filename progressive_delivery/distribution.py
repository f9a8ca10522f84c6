"""Prediction-distribution check for classifiers: Jensen-Shannon divergence between the arms' class counts.

A random per-request split gives both arms the same input distribution, so a shift in predicted classes
comes from the model. The counts are the wrapper's ``model_prediction_total{class=...}`` counters
(``model_wrappers/metrics.py``), increased over the window. The divergence is in bits (0 = identical,
1 = disjoint). Set ``warn_only`` when the new model is *expected* to predict differently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from progressive_delivery.statistics import Outcome


def js_divergence(first: Mapping[str, float], second: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence (base 2) of two count tables over the union of their classes.

    Either table empty gives NaN: there is no distribution to compare.
    """
    first_total, second_total = sum(first.values()), sum(second.values())
    if first_total <= 0 or second_total <= 0:
        return math.nan
    divergence = 0.0
    for label in set(first) | set(second):
        p = first.get(label, 0.0) / first_total
        q = second.get(label, 0.0) / second_total
        mixture = (p + q) / 2
        if p > 0:
            divergence += 0.5 * p * math.log2(p / mixture)
        if q > 0:
            divergence += 0.5 * q * math.log2(q / mixture)
    return max(0.0, divergence)


@dataclass(frozen=True)
class DistributionTest:
    """The check's verdict with both count tables (for the audit)."""

    outcome: Outcome
    reason: str
    divergence: float
    canary_counts: Mapping[str, float]
    stable_counts: Mapping[str, float]


def compare_distributions(
    canary_counts: Mapping[str, float],
    stable_counts: Mapping[str, float],
    *,
    max_divergence: float,
    min_predictions: int,
    warn_only: bool = False,
) -> DistributionTest:
    """PASS when the JS divergence is at most ``max_divergence``; FAIL above (PASS with a warning if ``warn_only``).

    Below ``min_predictions`` predicted rows on either arm the answer is INCONCLUSIVE: a few rows say
    nothing about a distribution.
    """
    canary_total, stable_total = sum(canary_counts.values()), sum(stable_counts.values())

    def result(outcome: Outcome, reason: str, divergence: float = math.nan) -> DistributionTest:
        return DistributionTest(outcome, reason, divergence, dict(canary_counts), dict(stable_counts))

    if canary_total < min_predictions or stable_total < min_predictions:
        return result(
            Outcome.INCONCLUSIVE,
            f"prediction distribution: {canary_total:.0f} canary and {stable_total:.0f} stable predictions, "
            f"below {min_predictions}",
        )
    divergence = js_divergence(canary_counts, stable_counts)
    observed = f"prediction distribution: JS divergence {divergence:.4f} bits (limit {max_divergence:g})"
    if divergence <= max_divergence:
        return result(Outcome.PASS, observed, divergence)
    if warn_only:
        return result(Outcome.PASS, f"{observed}; warning only", divergence)
    return result(Outcome.FAIL, f"{observed}: the canary predicts different classes", divergence)
