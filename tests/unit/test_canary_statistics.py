"""The canary's count statistics: Bayes-factor decisions, guardrails, minimum sample, combining outcomes."""

from __future__ import annotations

import math

import pytest
from scipy import integrate, stats

from progressive_delivery.statistics import (
    ArmCounts,
    LatencyTest,
    Outcome,
    ProportionLimits,
    ProportionTest,
    combine,
    compare_latency,
    compare_proportions,
    log_bayes_factor,
    required_requests,
)
from serving_core.errors import InvalidInputError

ERRORS = ProportionLimits(relative=1.0, absolute=0.002, guardrail=0.05)


def reference_log_bayes_factor(canary: ArmCounts, stable: ArmCounts, limits: ProportionLimits) -> float:
    """The same quantity by adaptive quadrature on the density (independent of the quantile grid)."""
    a, b = stable.events + 0.5, stable.requests - stable.events + 0.5
    x, n = canary.events, canary.requests
    scale = x * math.log(max(stable.rate, 1e-9)) + (n - x) * math.log1p(-stable.rate)

    def marginal(rate_of: object) -> float:
        def integrand(p: float) -> float:
            q = min(max(rate_of(p), 1e-12), 1 - 1e-12)  # type: ignore[operator]
            return stats.beta.pdf(p, a, b) * math.exp(x * math.log(q) + (n - x) * math.log1p(-q) - scale)

        value, _ = integrate.quad(integrand, 0, 1, points=[stable.rate], limit=200)
        return math.log(value)

    return marginal(limits.regressed) - marginal(lambda p: p)


@pytest.mark.parametrize(
    ("canary", "stable"),
    [
        (ArmCounts(1000, 10), ArmCounts(20000, 200)),
        (ArmCounts(1000, 25), ArmCounts(20000, 200)),
        (ArmCounts(500, 0), ArmCounts(9500, 12)),
        (ArmCounts(4000, 44), ArmCounts(4000, 40)),
    ],
)
def test_log_bayes_factor_matches_direct_integration(canary: ArmCounts, stable: ArmCounts) -> None:
    assert log_bayes_factor(canary, stable, ERRORS) == pytest.approx(
        reference_log_bayes_factor(canary, stable, ERRORS), abs=1e-6
    )


def test_a_canary_like_stable_passes() -> None:
    canary, stable = ArmCounts(2000, 19), ArmCounts(38000, 380)
    result = compare_proportions("error", canary, stable, ERRORS, min_requests=300)
    factor = reference_log_bayes_factor(canary, stable, ERRORS)
    assert factor <= ERRORS.pass_bound
    assert result == ProportionTest(
        metric="error",
        outcome=Outcome.PASS,
        reason=result.reason,
        canary=canary,
        stable=stable,
        regressed_rate=pytest.approx(0.022),
        log_bayes_factor=pytest.approx(factor, abs=1e-6),
        canary_lower_bound=pytest.approx(stats.beta.ppf(0.05, 19.5, 1981.5)),
    )
    assert result.reason.startswith("error: canary 0.0095 (19/2000) vs stable 0.0100; log Bayes factor")
    assert result.reason.endswith(f"<= {math.log(0.05 / 0.95):.2f}")


def test_a_doubled_error_rate_fails() -> None:
    canary, stable = ArmCounts(2000, 44), ArmCounts(38000, 380)
    result = compare_proportions("error", canary, stable, ERRORS, min_requests=300)
    assert (result.outcome, result.log_bayes_factor) == (
        Outcome.FAIL,
        pytest.approx(reference_log_bayes_factor(canary, stable, ERRORS), abs=1e-6),
    )
    assert result.log_bayes_factor is not None
    assert result.log_bayes_factor >= math.log(0.95 / 0.05)


def test_too_few_requests_is_inconclusive_whatever_the_rates() -> None:
    canary, stable = ArmCounts(40, 20), ArmCounts(5000, 50)
    assert compare_proportions("error", canary, stable, ERRORS, min_requests=300) == ProportionTest(
        metric="error",
        outcome=Outcome.INCONCLUSIVE,
        reason="error: 40 canary and 5000 stable requests, below the minimum sample of 300 per arm",
        canary=canary,
        stable=stable,
        regressed_rate=pytest.approx(0.022),
        log_bayes_factor=None,
        canary_lower_bound=None,
    )


def test_a_small_stable_arm_also_holds_the_decision_back() -> None:
    result = compare_proportions("slow", ArmCounts(5000, 50), ArmCounts(120, 1), ERRORS, min_requests=300)
    assert result.outcome is Outcome.INCONCLUSIVE


def test_the_guardrail_fails_a_canary_even_when_stable_is_as_bad() -> None:
    canary, stable = ArmCounts(1000, 90), ArmCounts(9000, 810)
    result = compare_proportions("error", canary, stable, ERRORS, min_requests=300)
    lower = stats.beta.ppf(0.05, 90.5, 910.5)
    assert result == ProportionTest(
        metric="error",
        outcome=Outcome.FAIL,
        reason=f"error: canary rate 0.0900 is above the guardrail 0.05 (lower 95% bound {lower:.4f})",
        canary=canary,
        stable=stable,
        regressed_rate=pytest.approx(0.182),
        log_bayes_factor=None,
        canary_lower_bound=pytest.approx(lower),
    )


def test_evidence_in_between_is_inconclusive() -> None:
    result = compare_proportions("error", ArmCounts(400, 6), ArmCounts(7600, 76), ERRORS, min_requests=300)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.log_bayes_factor is not None
    assert ERRORS.pass_bound < result.log_bayes_factor < ERRORS.fail_bound


def test_no_errors_anywhere_still_passes_thanks_to_the_absolute_margin() -> None:
    result = compare_proportions("error", ArmCounts(3000, 0), ArmCounts(30000, 0), ERRORS, min_requests=300)
    assert result.outcome is Outcome.PASS


def test_counts_are_validated_and_clamped() -> None:
    with pytest.raises(InvalidInputError, match="non-negative"):
        ArmCounts(-1, 0)
    assert ArmCounts(10, 10.4).events == 10


def test_combine_ranks_fail_then_hold_then_inconclusive() -> None:
    assert combine([Outcome.PASS, Outcome.INCONCLUSIVE, Outcome.HOLD, Outcome.FAIL]) is Outcome.FAIL
    assert combine([Outcome.PASS, Outcome.INCONCLUSIVE, Outcome.HOLD]) is Outcome.HOLD
    assert combine([Outcome.PASS, Outcome.INCONCLUSIVE]) is Outcome.INCONCLUSIVE
    assert combine([Outcome.PASS, Outcome.PASS]) is Outcome.PASS
    assert combine([]) is Outcome.HOLD


def test_latency_guard() -> None:
    assert compare_latency(0.99, 0.30, 0.20, max_ratio=1.25, max_seconds=None) == LatencyTest(
        Outcome.FAIL,
        "p99 latency: canary 0.300 s vs stable 0.200 s, more than 1.25x stable",
        0.99,
        0.3,
        0.2,
        1.25,
        None,
    )
    assert compare_latency(0.99, 0.22, 0.20, max_ratio=1.25, max_seconds=0.21).outcome is Outcome.FAIL
    assert compare_latency(0.99, 0.22, 0.20, max_ratio=1.25, max_seconds=1.0).outcome is Outcome.PASS
    assert compare_latency(0.99, math.nan, 0.20, max_ratio=1.25, max_seconds=None).outcome is Outcome.HOLD


def test_required_requests_follows_walds_approximation() -> None:
    p0, p1 = 0.01, 0.022
    drift = p0 * math.log(p1 / p0) + (1 - p0) * math.log((1 - p1) / (1 - p0))
    expected = (0.95 * math.log(0.05 / 0.95) + 0.05 * math.log(0.95 / 0.05)) / drift
    assert required_requests(0.01, ERRORS, min_requests=300) == math.ceil(expected)
    assert required_requests(0.2, ERRORS, min_requests=300) == 300
    with pytest.raises(InvalidInputError, match="must lie above the baseline"):
        required_requests(0.01, ProportionLimits(relative=0, absolute=0), min_requests=1)
