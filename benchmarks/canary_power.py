"""Canary decision power: our count-based rule against a Flagger-style threshold rule on the same simulated streams.

Each rollout steps the canary through 5, 10, 25, 50 % of a constant request rate (Poisson arrivals). Every
request of either arm is an error with the arm's error probability and slow (over the SLO) with a probability
that follows from the arm's log-normal latency. Both rules judge the *same* per-interval counts:

- **ours** (``progressive_delivery.statistics``): every tick (30 s) compares the canary's error and slow
  counts since the step began with the stable arm's, by the Beta-binomial rule (minimum sample, guardrail,
  posterior levels); a PASS tick advances the step, the last PASS promotes, FAIL ticks beyond
  ``failure_limit`` roll back, a step undecided past the budget pauses.
- **flagger** (``fluxcd/flagger`` ``scheduler.go``): every interval checks the canary alone, success rate
  >= a minimum and p99 <= a maximum (limits midway between stable and a x2 error rate / the shifted p99);
  no requests counts as a failed check; a failed check increments ``failedChecks`` (cumulative) and holds
  the weight; ``failedChecks >= threshold`` rolls back; a passing check steps; passing the last step
  promotes. Its interval and threshold are chosen from a grid: the cheapest setting that meets the error
  targets (false rollback <= 5 %, missed regression <= 5 %), else the one closest to them.

Reported per scenario: the share of correct decisions, false-rollback / missed-regression rates, and the
mean canary requests to a correct decision (requests the canary arm served until the rule decided).

    .venv/bin/python -m benchmarks.canary_power [--rollouts 1000] [--rps 20] [--seed 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from progressive_delivery.statistics import ProportionLimits, log_bayes_factors, lower_bounds

STEPS = (5, 10, 25, 50)
TICK_S = 30.0
SLO_S = 0.5
STABLE_ERROR = 0.01
STABLE_MEDIAN_S = 0.2
LATENCY_SIGMA = 0.45
BUDGET_S = 45 * 60.0

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Scenario:
    """The canary's error probability and latency scale next to stable's."""

    name: str
    error_factor: float
    latency_factor: float

    @property
    def regression(self) -> bool:
        return self.error_factor > 1 or self.latency_factor > 1


SCENARIOS = (
    Scenario("no regression", 1.0, 1.0),
    Scenario("error rate x2", 2.0, 1.0),
    Scenario("error rate x5", 5.0, 1.0),
    Scenario("latency x1.25", 1.0, 1.25),
)


def slow_probability(median_s: float) -> float:
    """P(latency > SLO) for a log-normal latency with this median."""
    return float(0.5 * special.erfc(math.log(SLO_S / median_s) / (LATENCY_SIGMA * math.sqrt(2))))


@dataclass(frozen=True)
class OurRule:
    """Knobs of our rule as the benchmark runs it (AnalysisConfig's defaults unless noted)."""

    min_requests: int = 300
    error: ProportionLimits = dataclasses.field(
        default_factory=lambda: ProportionLimits(relative=1.0, absolute=0.002, guardrail=0.05)
    )
    slow: ProportionLimits = dataclasses.field(
        default_factory=lambda: ProportionLimits(relative=1.0, absolute=0.01, guardrail=0.2)
    )
    # A FAIL is already a decision at the test's alpha: the first one rolls back.
    failure_limit: int = 0
    tick_s: float = TICK_S
    # "rollout": the window starts when the canary first gets traffic, so evidence carries across steps
    # (a random split gives the canary the same per-request error probability at every weight);
    # "step": it restarts at every step.
    window: str = "rollout"
    steps: tuple[int, ...] = STEPS


@dataclass(frozen=True)
class FlaggerRule:
    """Flagger's per-interval absolute checks."""

    interval_s: float
    threshold: int
    max_error: float
    max_p99_s: float
    steps: tuple[int, ...] = STEPS


@dataclass
class Result:
    """Decisions of one rule on one scenario: +1 promoted, -1 rolled back, 0 undecided (paused)."""

    decisions: NDArray[np.int64]
    canary_requests: Floats

    def summary(self, scenario: Scenario) -> dict[str, float]:
        correct_decision = -1 if scenario.regression else 1
        correct = self.decisions == correct_decision
        return {
            "correct": float(correct.mean()),
            "false_rollback": float((self.decisions == -1).mean()) if not scenario.regression else math.nan,
            "missed": float((self.decisions == 1).mean()) if scenario.regression else math.nan,
            "undecided": float((self.decisions == 0).mean()),
            "requests": float(self.canary_requests[correct].mean()) if correct.any() else math.nan,
        }


def _proportion_outcomes(
    min_requests: int, limits: ProportionLimits, canary: tuple[Floats, Floats], stable: tuple[Floats, Floats]
) -> NDArray[np.int64]:
    """+1 PASS, -1 FAIL, 0 INCONCLUSIVE per rollout (the rule of ``compare_proportions``, vectorised)."""
    outcome = np.zeros(len(canary[0]), dtype=np.int64)
    enough = (canary[0] >= min_requests) & (stable[0] >= min_requests)
    if not enough.any():
        return outcome
    index = np.flatnonzero(enough)
    c_n, c_x, s_n, s_x = canary[0][index], canary[1][index], stable[0][index], stable[1][index]
    guardrail = math.inf if limits.guardrail is None else limits.guardrail
    guard = lower_bounds(c_n, c_x, limits.guardrail_level) > guardrail
    factor = log_bayes_factors(c_n, c_x, s_n, s_x, relative=limits.relative, absolute=limits.absolute)
    decided = np.where(factor >= limits.fail_bound, -1, np.where(factor <= limits.pass_bound, 1, 0))
    outcome[index] = np.where(guard, -1, decided)
    return outcome


def run_ours(rule: OurRule, scenario: Scenario, rps: float, rollouts: int, rng: np.random.Generator) -> Result:
    """Simulate our rule (a PASS tick advances one step; one tick at least per step)."""
    canary_error = STABLE_ERROR * scenario.error_factor
    canary_slow = slow_probability(STABLE_MEDIAN_S * scenario.latency_factor)
    stable_slow = slow_probability(STABLE_MEDIAN_S)
    step = np.zeros(rollouts, dtype=np.int64)
    decisions = np.zeros(rollouts, dtype=np.int64)
    active = np.ones(rollouts, dtype=bool)
    fails = np.zeros(rollouts, dtype=np.int64)
    step_ticks = np.zeros(rollouts, dtype=np.int64)
    served = np.zeros(rollouts)
    counts = {key: np.zeros(rollouts) for key in ("cn", "ce", "cs", "sn", "se", "ss")}
    weights = np.array(rule.steps, dtype=np.float64)
    while active.any():
        index = np.flatnonzero(active)
        weight = weights[step[index]] / 100
        canary_n = rng.poisson(rps * weight * rule.tick_s).astype(np.float64)
        stable_n = rng.poisson(rps * (1 - weight) * rule.tick_s).astype(np.float64)
        served[index] += canary_n
        counts["cn"][index] += canary_n
        counts["ce"][index] += rng.binomial(canary_n.astype(np.int64), canary_error)
        counts["cs"][index] += rng.binomial(canary_n.astype(np.int64), canary_slow)
        counts["sn"][index] += stable_n
        counts["se"][index] += rng.binomial(stable_n.astype(np.int64), STABLE_ERROR)
        counts["ss"][index] += rng.binomial(stable_n.astype(np.int64), stable_slow)
        step_ticks[index] += 1
        canary_n_all, stable_n_all = counts["cn"][index], counts["sn"][index]
        error = _proportion_outcomes(
            rule.min_requests, rule.error, (canary_n_all, counts["ce"][index]), (stable_n_all, counts["se"][index])
        )
        slow = _proportion_outcomes(
            rule.min_requests, rule.slow, (canary_n_all, counts["cs"][index]), (stable_n_all, counts["ss"][index])
        )
        failed = (error == -1) | (slow == -1)
        passed = (error == 1) & (slow == 1)
        fails[index[failed]] += 1
        rollback = index[failed & (fails[index] > rule.failure_limit)]
        decisions[rollback] = -1
        active[rollback] = False
        advance = index[passed]
        promote = advance[step[advance] == len(rule.steps) - 1]
        decisions[promote] = 1
        active[promote] = False
        moving = advance[step[advance] < len(rule.steps) - 1]
        step[moving] += 1
        step_ticks[moving] = 0
        if rule.window == "step":
            for values in counts.values():
                values[moving] = 0
        paused = np.flatnonzero(active & (step_ticks * rule.tick_s >= BUDGET_S))
        active[paused] = False
    return Result(decisions, served)


def _interval_p99(samples: NDArray[np.int64], median_s: float, rng: np.random.Generator) -> Floats:
    """p99 of ``n`` log-normal latencies per rollout, drawn through the order statistic (NaN when n = 0)."""
    n = samples.astype(np.float64)
    rank = np.ceil(0.99 * n)
    uniform = rng.beta(np.maximum(rank, 1), np.maximum(n - rank + 1, 1))
    p99 = median_s * np.exp(LATENCY_SIGMA * math.sqrt(2) * special.erfinv(2 * uniform - 1))
    return np.where(n > 0, p99, np.nan)


def run_flagger(rule: FlaggerRule, scenario: Scenario, rps: float, rollouts: int, rng: np.random.Generator) -> Result:
    """Simulate Flagger's loop with one analysis per interval."""
    canary_error = STABLE_ERROR * scenario.error_factor
    canary_median = STABLE_MEDIAN_S * scenario.latency_factor
    step = np.zeros(rollouts, dtype=np.int64)
    decisions = np.zeros(rollouts, dtype=np.int64)
    active = np.ones(rollouts, dtype=bool)
    failed_checks = np.zeros(rollouts, dtype=np.int64)
    served = np.zeros(rollouts)
    elapsed = np.zeros(rollouts)
    weights = np.array(rule.steps, dtype=np.float64)
    while active.any():
        index = np.flatnonzero(active)
        n = rng.poisson(rps * weights[step[index]] / 100 * rule.interval_s)
        served[index] += n
        elapsed[index] += rule.interval_s
        errors = rng.binomial(n, canary_error)
        with np.errstate(invalid="ignore", divide="ignore"):
            error_rate = np.where(n > 0, errors / np.maximum(n, 1), np.nan)
        p99 = _interval_p99(n, canary_median, rng)
        # No data is a failed check in Flagger (ErrNoValuesFound).
        ok = (n > 0) & (error_rate <= rule.max_error) & (p99 <= rule.max_p99_s)
        failed_checks[index[~ok]] += 1
        rollback = index[~ok & (failed_checks[index] >= rule.threshold)]
        decisions[rollback] = -1
        active[rollback] = False
        advance = index[ok]
        promote = advance[step[advance] == len(rule.steps) - 1]
        decisions[promote] = 1
        active[promote] = False
        step[advance[step[advance] < len(rule.steps) - 1]] += 1
        # Flagger's progressDeadline/iteration cap: give up after the same budget per step as ours.
        stuck = np.flatnonzero(active & (elapsed >= BUDGET_S * len(rule.steps)))
        active[stuck] = False
    return Result(decisions, served)


def evaluate(runner: Callable[[Scenario, np.random.Generator], Result], seed: int) -> dict[str, dict[str, float]]:
    """Every scenario's summary; each scenario gets the same seed, so both rules see comparable streams."""
    return {s.name: runner(s, np.random.default_rng([seed, index])).summary(s) for index, s in enumerate(SCENARIOS)}


def meets_targets(summaries: dict[str, dict[str, float]], limit: float = 0.05) -> bool:
    return all(
        (value["false_rollback"] <= limit if not math.isnan(value["false_rollback"]) else True)
        and (value["missed"] <= limit if not math.isnan(value["missed"]) else True)
        and value["correct"] >= 1 - 2 * limit
        for value in summaries.values()
    )


def worst_error(summaries: dict[str, dict[str, float]]) -> float:
    return max(
        max(
            0.0 if math.isnan(v["false_rollback"]) else v["false_rollback"],
            0.0 if math.isnan(v["missed"]) else v["missed"],
        )
        + v["undecided"]
        for v in summaries.values()
    )


def mean_requests(summaries: dict[str, dict[str, float]]) -> float:
    return float(np.nanmean([v["requests"] for v in summaries.values()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--rps", type=float, default=20.0, help="total requests per second on the service")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steps", default=",".join(map(str, STEPS)), help="canary weights, e.g. 10,25,50")
    args = parser.parse_args()

    started = time.perf_counter()
    steps = tuple(int(weight) for weight in args.steps.split(","))
    ours_rule = OurRule(steps=steps)
    ours = evaluate(lambda s, rng: run_ours(ours_rule, s, args.rps, args.rollouts, rng), args.seed)
    ours_s = time.perf_counter() - started
    step_rule = dataclasses.replace(ours_rule, window="step")
    ours_step = evaluate(lambda s, rng: run_ours(step_rule, s, args.rps, args.rollouts, rng), args.seed)

    stable_p99 = STABLE_MEDIAN_S * math.exp(LATENCY_SIGMA * 2.3263)
    shifted = max(s.latency_factor for s in SCENARIOS)
    flagger_results = []
    for interval in (30.0, 60.0, 120.0, 300.0, 600.0, 900.0):
        for threshold in (1, 2, 3, 5):
            rule = FlaggerRule(interval, threshold, STABLE_ERROR * 1.5, stable_p99 * (1 + shifted) / 2, steps)
            summaries = evaluate(lambda s, rng, r=rule: run_flagger(r, s, args.rps, args.rollouts, rng), args.seed)
            flagger_results.append((rule, summaries))
    meeting = [(rule, s) for rule, s in flagger_results if meets_targets(s)]
    if meeting:
        flagger_rule, flagger = min(meeting, key=lambda item: mean_requests(item[1]))
        chosen = "cheapest setting meeting the targets"
    else:
        flagger_rule, flagger = min(flagger_results, key=lambda item: worst_error(item[1]))
        chosen = "no setting meets the targets; the one closest to them"

    print(f"{args.rollouts} rollouts per scenario, {args.rps:g} requests/s, steps {steps}, ticks {TICK_S:g} s")
    print(f"stable: error {STABLE_ERROR:.1%}, slow (> {SLO_S} s) {slow_probability(STABLE_MEDIAN_S):.1%}")
    print(f"ours: {dataclasses.asdict(ours_rule)} ({ours_s:.0f} s)")
    print(f"flagger: {dataclasses.asdict(flagger_rule)} ({chosen})")
    print()
    header = (
        "| scenario | rule | correct | false rollback | missed regression | undecided | "
        "canary requests to a correct decision | ours / flagger |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|---|")

    def cell(value: float) -> str:
        return "-" if math.isnan(value) else f"{value:.1%}"

    for scenario in SCENARIOS:
        mine, per_step, theirs = ours[scenario.name], ours_step[scenario.name], flagger[scenario.name]
        rows = (
            ("ours", mine, f"{mine['requests'] / theirs['requests']:.2f}"),
            ("ours, step window", per_step, f"{per_step['requests'] / theirs['requests']:.2f}"),
            ("flagger", theirs, ""),
        )
        for name, value, extra in rows:
            print(
                f"| {scenario.name} | {name} | {cell(value['correct'])} | {cell(value['false_rollback'])} | "
                f"{cell(value['missed'])} | {cell(value['undecided'])} | {value['requests']:,.0f} | {extra} |"
            )
    overall = mean_requests(ours) / mean_requests(flagger)
    print()
    print(f"mean requests to a correct decision, ours / flagger: {overall:.2f}")
    print(f"ours meets false rollback <= 5 % and missed <= 5 %: {meets_targets(ours)}")
    print(
        f"ours with a step window, ratio: {mean_requests(ours_step) / mean_requests(flagger):.2f}, "
        f"meets the targets: {meets_targets(ours_step)}"
    )


if __name__ == "__main__":
    main()
