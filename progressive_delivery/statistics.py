"""Count-based canary statistics: a sequential Bayes-factor test on error and slow-request proportions.

Why this rule (docs/progressive-delivery.md, "Analysis"): errors and slow requests are binomial counts
(``increase()`` over counters and histogram buckets), and the canary is compared with the stable arm that
serves the same random split at the same time (Kayenta's baseline). Each tick weighs two hypotheses for
the canary's rate ``p_c`` given stable's ``p_s``:

- H0 "no worse": ``p_c = p_s``;
- H1 "regressed": ``p_c = p_s * (1 + relative) + absolute`` (the smallest regression worth catching);

with ``p_s`` integrated over its Jeffreys posterior ``Beta(x + 1/2, n - x + 1/2)``, so a stable arm with
few requests cannot make the canary look certain. The Bayes factor ``BF = P(canary counts | H1) /
P(canary counts | H0)`` is Wald's sequential probability ratio with the stable rate marginalised. Rules:

1. either arm below ``min_requests`` → INCONCLUSIVE (one transient 5xx in three requests is not a 33 %
   error rate);
2. the canary's lower credible bound above the absolute guardrail → FAIL (critical, whatever stable does);
3. ``BF >= (1 - beta) / alpha`` → FAIL; ``BF <= beta / (1 - alpha)`` → PASS; otherwise INCONCLUSIVE.

With stable's rate known, the Bayes factor is a martingale under H0, so however often a rollout looks
(every tick, on counts that keep growing across steps) it crosses ``1/alpha`` with probability at most
``alpha`` (Ville's inequality); with the rate estimated from a stable arm many times the canary's size this
holds approximately. Repeated looks therefore do not inflate false rollbacks the way a fixed posterior
level tested every tick does. Wald's
test also needs the fewest requests on average for given error rates, which is what low-traffic models
need (benchmarks/canary_power.py).

Missing data is never judged here: the caller turns it into HOLD before calling (:class:`Outcome`).
Everything is deterministic (quadrature, no random draws), so a tick can be re-evaluated from its audit
record and get the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from serving_core.errors import InvalidInputError

# The stable rate is integrated over its posterior by the trapezoid rule in normal-score space:
# p = F^-1(Phi(z)) on an even grid of z in [-8, 8] with weights phi(z). The integrand is smooth and the
# weights decay fast, so 64 nodes agree with adaptive quadrature to about 1e-12 (tests/unit).
_NORMAL_SCORES = np.linspace(-8.0, 8.0, 64)
_LOG_WEIGHTS = -0.5 * _NORMAL_SCORES**2 - float(special.logsumexp(-0.5 * _NORMAL_SCORES**2))
_QUANTILES = special.ndtr(_NORMAL_SCORES)
# Rates are clipped away from 0 and 1 so that log-likelihoods stay finite.
_RATE_FLOOR = 1e-12


class Outcome(StrEnum):
    """What one check, one tick or one shadow run concluded."""

    PASS = "PASS"  # enough evidence that the canary is no worse than allowed
    FAIL = "FAIL"  # enough evidence that it is worse (or breaks an absolute guardrail)
    INCONCLUSIVE = "INCONCLUSIVE"  # data present but not enough to decide yet
    HOLD = "HOLD"  # data missing (Prometheus unreachable, no series): never a pass, never a fail


# Worst first: a FAIL backed by data stands even when another metric is missing; missing data then
# outranks "not enough data yet", so an outage never looks like slow progress.
_SEVERITY = (Outcome.FAIL, Outcome.HOLD, Outcome.INCONCLUSIVE, Outcome.PASS)


def combine(outcomes: Iterable[Outcome]) -> Outcome:
    """The tick's outcome from its checks: any FAIL, else any HOLD, else any INCONCLUSIVE, else PASS.

    No checks at all is HOLD: nothing was measured, so nothing may be concluded.
    """
    seen = set(outcomes)
    if not seen:
        return Outcome.HOLD
    return next(outcome for outcome in _SEVERITY if outcome in seen)


@dataclass(frozen=True)
class ArmCounts:
    """Requests an arm served in the window and how many of them were bad (errors, or slow)."""

    requests: float
    events: float

    def __post_init__(self) -> None:
        """Counts from ``increase()`` are non-negative reals; clamp rounding noise (events <= requests)."""
        if self.requests < 0 or self.events < 0 or math.isnan(self.requests) or math.isnan(self.events):
            raise InvalidInputError(
                f"counts must be non-negative numbers, got requests={self.requests} events={self.events}"
            )
        object.__setattr__(self, "events", min(self.events, self.requests))

    @property
    def rate(self) -> float:
        """The observed proportion (0 with no requests)."""
        return self.events / self.requests if self.requests else 0.0

    def posterior(self) -> tuple[float, float]:
        """Jeffreys posterior ``Beta(a, b)`` parameters."""
        return self.events + 0.5, self.requests - self.events + 0.5

    def credible_interval(self, level: float) -> tuple[float, float]:
        """Equal-tailed credible interval at ``level`` (e.g. 0.95 → 2.5 % and 97.5 % quantiles)."""
        a, b = self.posterior()
        tail = (1.0 - level) / 2.0
        return float(stats.beta.ppf(tail, a, b)), float(stats.beta.ppf(1.0 - tail, a, b))

    def lower_bound(self, level: float) -> float:
        """One-sided lower credible bound: ``P(p >= bound) = level``."""
        a, b = self.posterior()
        return float(stats.beta.ppf(1.0 - level, a, b))


@dataclass(frozen=True)
class ProportionLimits:
    """The regression to catch on one proportion, the error rates of the test, and an absolute guardrail.

    Attributes:
        relative: relative increase over stable that H1 states (1.0 = the canary's rate doubles).
        absolute: absolute increase H1 adds on top (keeps H1 apart from H0 when stable has no errors).
        alpha: tolerated false-rollback probability (H0 true, test says FAIL).
        beta: tolerated missed-regression probability (H1 true, test says PASS).
        guardrail: absolute ceiling on the canary's rate whatever stable does (``None``: none).
        guardrail_level: one-sided level of the lower credible bound compared with the guardrail.
    """

    relative: float
    absolute: float
    alpha: float = 0.05
    beta: float = 0.05
    guardrail: float | None = None
    guardrail_level: float = 0.95

    def regressed(self, stable_rate: float) -> float:
        """The canary rate H1 states next to ``stable_rate``."""
        return min(1.0, stable_rate * (1.0 + self.relative) + self.absolute)

    @property
    def fail_bound(self) -> float:
        """The log Bayes factor at or above which the test says FAIL."""
        return math.log((1.0 - self.beta) / self.alpha)

    @property
    def pass_bound(self) -> float:
        """The log Bayes factor at or below which the test says PASS."""
        return math.log(self.beta / (1.0 - self.alpha))


def log_bayes_factor(canary: ArmCounts, stable: ArmCounts, limits: ProportionLimits) -> float:
    """``log P(canary counts | H1) - log P(canary counts | H0)``, stable's rate integrated over its posterior."""
    factor = log_bayes_factors(
        np.array([canary.requests]),
        np.array([canary.events]),
        np.array([stable.requests]),
        np.array([stable.events]),
        relative=limits.relative,
        absolute=limits.absolute,
    )
    return float(factor[0])


def log_bayes_factors(
    canary_requests: NDArray[np.float64],
    canary_events: NDArray[np.float64],
    stable_requests: NDArray[np.float64],
    stable_events: NDArray[np.float64],
    *,
    relative: float,
    absolute: float,
) -> NDArray[np.float64]:
    """:func:`log_bayes_factor` for many count pairs at once (the benchmark judges 1,000 rollouts per tick).

    The stable rate is integrated over its posterior (see ``_NORMAL_SCORES``).
    """
    stable_rates = special.betaincinv(
        (stable_events + 0.5)[:, None], (stable_requests - stable_events + 0.5)[:, None], _QUANTILES[None, :]
    )
    events = canary_events[:, None]
    non_events = (canary_requests - canary_events)[:, None]

    def log_marginal(rates: NDArray[np.float64]) -> NDArray[np.float64]:
        rates = np.clip(rates, _RATE_FLOOR, 1.0 - _RATE_FLOOR)
        log_likelihood = events * np.log(rates) + non_events * np.log1p(-rates)
        result: NDArray[np.float64] = special.logsumexp(log_likelihood + _LOG_WEIGHTS[None, :], axis=1)
        return result

    regressed = np.minimum(1.0, stable_rates * (1.0 + relative) + absolute)
    return log_marginal(regressed) - log_marginal(stable_rates)


def lower_bounds(requests: NDArray[np.float64], events: NDArray[np.float64], level: float) -> NDArray[np.float64]:
    """One-sided lower credible bounds of many arms (``ArmCounts.lower_bound`` vectorised)."""
    result: NDArray[np.float64] = special.betaincinv(events + 0.5, requests - events + 0.5, 1.0 - level)
    return result


@dataclass(frozen=True)
class ProportionTest:
    """One binomial check of the canary against stable, with every number that decided it (for the audit)."""

    metric: str
    outcome: Outcome
    reason: str
    canary: ArmCounts
    stable: ArmCounts
    regressed_rate: float
    log_bayes_factor: float | None
    canary_lower_bound: float | None


def compare_proportions(
    metric: str, canary: ArmCounts, stable: ArmCounts, limits: ProportionLimits, min_requests: int
) -> ProportionTest:
    """Judge one proportion (``error``, ``slow``) by the rules in the module docstring."""
    regressed = limits.regressed(stable.rate)

    def result(
        outcome: Outcome, reason: str, factor: float | None = None, lower: float | None = None
    ) -> ProportionTest:
        return ProportionTest(metric, outcome, reason, canary, stable, regressed, factor, lower)

    if canary.requests < min_requests or stable.requests < min_requests:
        return result(
            Outcome.INCONCLUSIVE,
            f"{metric}: {canary.requests:.0f} canary and {stable.requests:.0f} stable requests, "
            f"below the minimum sample of {min_requests} per arm",
        )
    lower = None
    if limits.guardrail is not None:
        lower = canary.lower_bound(limits.guardrail_level)
        if lower > limits.guardrail:
            return result(
                Outcome.FAIL,
                f"{metric}: canary rate {canary.rate:.4f} is above the guardrail {limits.guardrail:g} "
                f"(lower {limits.guardrail_level:.0%} bound {lower:.4f})",
                lower=lower,
            )
    factor = log_bayes_factor(canary, stable, limits)
    observed = (
        f"canary {canary.rate:.4f} ({canary.events:.0f}/{canary.requests:.0f}) vs stable {stable.rate:.4f}; "
        f"log Bayes factor for a regression to {regressed:.4f}: {factor:.2f}"
    )
    if factor >= limits.fail_bound:
        return result(Outcome.FAIL, f"{metric}: {observed} >= {limits.fail_bound:.2f}", factor, lower)
    if factor <= limits.pass_bound:
        return result(Outcome.PASS, f"{metric}: {observed} <= {limits.pass_bound:.2f}", factor, lower)
    return result(Outcome.INCONCLUSIVE, f"{metric}: {observed}, not decided yet", factor, lower)


@dataclass(frozen=True)
class LatencyTest:
    """The latency-quantile guard: the canary's quantile against stable's and an absolute ceiling."""

    outcome: Outcome
    reason: str
    quantile: float
    canary_seconds: float
    stable_seconds: float
    max_ratio: float
    max_seconds: float | None


def compare_latency(
    quantile: float,
    canary_seconds: float,
    stable_seconds: float,
    *,
    max_ratio: float,
    max_seconds: float | None,
) -> LatencyTest:
    """PASS when the canary's quantile is within ``max_ratio`` of stable's and under ``max_seconds``.

    Only call it above the minimum sample: a quantile from a handful of requests is noise. NaN (no
    requests in the window) is HOLD.
    """
    name = f"p{quantile * 100:g} latency"

    def result(outcome: Outcome, reason: str) -> LatencyTest:
        return LatencyTest(outcome, reason, quantile, canary_seconds, stable_seconds, max_ratio, max_seconds)

    if math.isnan(canary_seconds) or math.isnan(stable_seconds):
        return result(Outcome.HOLD, f"{name}: no histogram data in the window")
    observed = f"canary {canary_seconds:.3f} s vs stable {stable_seconds:.3f} s"
    if max_seconds is not None and canary_seconds > max_seconds:
        return result(Outcome.FAIL, f"{name}: {observed}, above the ceiling {max_seconds:g} s")
    if stable_seconds > 0 and canary_seconds / stable_seconds > max_ratio:
        return result(Outcome.FAIL, f"{name}: {observed}, more than {max_ratio:g}x stable")
    return result(Outcome.PASS, f"{name}: {observed}, within {max_ratio:g}x")


def required_requests(baseline_rate: float, limits: ProportionLimits, min_requests: int) -> int:
    """Expected canary requests until a canary as good as stable PASSes (Wald's approximation).

    Under H0 each request moves log BF by the Kullback-Leibler divergence ``KL(p0 || p1)`` on average,
    so reaching the PASS bound takes about ``((1 - alpha) * pass_bound + alpha * fail_bound) / -KL``
    requests; never fewer than ``min_requests``.
    """
    p0 = baseline_rate
    p1 = limits.regressed(p0)
    if not 0 < p0 < p1 < 1:
        raise InvalidInputError(
            f"the regression to catch ({p1:g}) must lie above the baseline rate {p0:g} and below 1",
            hint="set relative or absolute above 0",
        )
    drift = p0 * math.log(p1 / p0) + (1 - p0) * math.log((1 - p1) / (1 - p0))
    expected = ((1 - limits.alpha) * limits.pass_bound + limits.alpha * limits.fail_bound) / drift
    return max(min_requests, math.ceil(expected))
