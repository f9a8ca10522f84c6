"""Forecast the time a step needs to reach a decision, before stepping (canary.md §7.6).

The canary arm sees ``requests_per_second * weight / 100``; a PASS needs the error check's sample on the
canary arm (twice Wald's expected sample at ``baseline_error_rate``, within which about 9 in 10 good
canaries decide; never below ``min_requests_per_arm``) and the minimum sample on the stable arm. At 10 RPS and a
5 % step that is about an hour for a 1 % error rate: say so up front instead of sitting INCONCLUSIVE.

API (used by the rollout): :func:`seconds_to_decision` and :func:`check_budget`.
"""

from __future__ import annotations

import math

from progressive_delivery.analysis import AnalysisConfig
from progressive_delivery.statistics import required_requests
from serving_core.errors import InvalidInputError

# Wald's formula gives the *expected* sample; the stopping time is right-skewed, and about nine in ten good
# canaries decide within twice it (simulated at a 1 % error rate: mean 662, 90th percentile 1,227).
# Forecasting the mean would let a step start that pauses undecided four times in ten.
_NINETY_PERCENT_FACTOR = 2.0


def requests_to_decision(config: AnalysisConfig) -> int:
    """Canary-arm requests within which about 9 in 10 good canaries PASS (never fewer than the minimum sample)."""
    expected = required_requests(config.baseline_error_rate, config.error.limits(), min_requests=1)
    return max(config.min_requests_per_arm, math.ceil(_NINETY_PERCENT_FACTOR * expected))


def seconds_to_decision(requests_per_second: float, canary_weight_percent: int, config: AnalysisConfig) -> float:
    """Seconds until both arms hold enough requests for a decision at this weight (``inf`` without traffic).

    Raises:
        InvalidInputError: a negative rate, or a weight outside 1-99 (0 % and 100 % have no comparison).
    """
    if requests_per_second < 0 or math.isnan(requests_per_second):
        raise InvalidInputError(f"request rate {requests_per_second} is not a non-negative number")
    if not 0 < canary_weight_percent < 100:
        raise InvalidInputError(
            f"canary weight {canary_weight_percent} % has no stable arm to compare with",
            hint="forecast steps between 1 and 99 %",
        )
    if requests_per_second == 0:
        return math.inf
    canary_rate = requests_per_second * canary_weight_percent / 100
    stable_rate = requests_per_second - canary_rate
    return max(requests_to_decision(config) / canary_rate, config.min_requests_per_arm / stable_rate)


def check_budget(
    requests_per_second: float, canary_weight_percent: int, config: AnalysisConfig, *, refuse: bool = True
) -> str | None:
    """``None`` when a step can decide within ``inconclusive_budget_seconds``; otherwise refuse or warn.

    Returns:
        ``None`` within budget; the warning text when over budget and ``refuse`` is false.

    Raises:
        InvalidInputError: over budget and ``refuse`` (nothing has been changed yet).
    """
    seconds = seconds_to_decision(requests_per_second, canary_weight_percent, config)
    if seconds <= config.inconclusive_budget_seconds:
        return None
    needed = requests_to_decision(config)
    fastest_weight = next(
        (
            weight
            for weight in range(canary_weight_percent + 1, 100)
            if seconds_to_decision(requests_per_second, weight, config) <= config.inconclusive_budget_seconds
        ),
        None,
    )
    remedy = (
        f"start at {fastest_weight} % or more"
        if fastest_weight is not None
        else "traffic is too low for any step: use the shadow stage or raise inconclusive_budget_seconds"
    )
    message = (
        f"at {requests_per_second:g} requests/s a {canary_weight_percent} % step needs about "
        f"{seconds / 60:.0f} min for {needed} canary requests, over the budget of "
        f"{config.inconclusive_budget_seconds / 60:.0f} min"
    )
    if refuse:
        raise InvalidInputError(message, hint=f"{remedy}, or lower min_requests_per_arm / widen the error tolerance")
    return f"{message}; {remedy}"
