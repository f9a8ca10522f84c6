"""Time to a decision before stepping, and refusing (or warning) over the budget."""

from __future__ import annotations

import math

import pytest

from progressive_delivery.analysis import AnalysisConfig
from progressive_delivery.forecast import check_budget, requests_to_decision, seconds_to_decision
from progressive_delivery.statistics import required_requests
from serving_core.errors import InvalidInputError

CONFIG = AnalysisConfig(inconclusive_budget_seconds=1800)


def test_seconds_to_decision_divides_the_needed_requests_by_the_canary_rate() -> None:
    needed = math.ceil(2 * required_requests(0.01, CONFIG.error.limits(), 1))
    assert requests_to_decision(CONFIG) == needed
    assert requests_to_decision(CONFIG.model_copy(update={"min_requests_per_arm": 5000})) == 5000
    assert seconds_to_decision(10, 5, CONFIG) == pytest.approx(needed / 0.5)
    assert seconds_to_decision(10, 50, CONFIG) == pytest.approx(needed / 5)
    assert seconds_to_decision(0, 5, CONFIG) == math.inf


def test_within_budget_is_silent() -> None:
    assert check_budget(100, 10, CONFIG) is None


def test_over_budget_refuses_and_names_the_weight_that_would_do() -> None:
    needed = requests_to_decision(CONFIG)
    seconds = needed / 0.25
    fastest = next(w for w in range(6, 100) if needed / (5 * w / 100) <= 1800)
    with pytest.raises(InvalidInputError) as raised:
        check_budget(5, 5, CONFIG)
    assert raised.value.message == (
        f"at 5 requests/s a 5 % step needs about {seconds / 60:.0f} min for {needed} canary requests, "
        "over the budget of 30 min"
    )
    assert raised.value.hint == (
        f"start at {fastest} % or more, or lower min_requests_per_arm / widen the error tolerance"
    )


def test_over_budget_warns_when_asked_to() -> None:
    warning = check_budget(0.01, 5, CONFIG, refuse=False)
    assert warning is not None
    assert warning.endswith(
        "traffic is too low for any step: use the shadow stage or raise inconclusive_budget_seconds"
    )


@pytest.mark.parametrize(("rate", "weight"), [(-1.0, 5), (10.0, 0), (10.0, 100)])
def test_bad_inputs_are_refused(rate: float, weight: int) -> None:
    with pytest.raises(InvalidInputError):
        seconds_to_decision(rate, weight, CONFIG)
