"""The adaptive concurrency limit: unloaded latency first, then steps towards tolerance x the unloaded tail,
held at the knee where more requests in flight bring no more throughput.

Pure logic: requests, answers and the clock are fed by hand or by a small closed-loop simulation whose
latency is a deterministic function of the requests in flight (a seeded noise where stated).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from batch_jobs.concurrency import ConcurrencyController, ConcurrencySettings, quantile
from serving_core.errors import InvalidInputError


def _answer(controller: ConcurrencyController, latency_s: float, in_flight: int = 1) -> None:
    controller.on_answer(controller.sent(in_flight), latency_s)


def _with_baseline(settings: ConcurrencySettings, latency_s: float = 0.010) -> ConcurrencyController:
    controller = ConcurrencyController(settings)
    for _ in range(settings.baseline_samples):
        assert controller.allowed(0.0) == 1  # the unloaded latency is measured one request at a time
        _answer(controller, latency_s)
    assert controller.measuring is False
    return controller


def _round(controller: ConcurrencyController, latency_s: float) -> None:
    """One round of answers at the current limit, the limit filled."""
    limit = int(controller.limit)
    for _ in range(max(controller.settings.baseline_samples, limit)):
        _answer(controller, latency_s, in_flight=limit)


@dataclass
class Run:
    """What a simulated job did: the limit at each answer after ``settle_s``, and the controller."""

    controller: ConcurrencyController
    limits: list[int]
    answers: int


LatencyModel = Callable[[int, random.Random], float]


def _simulate(
    settings: ConcurrencySettings,
    latency_of: LatencyModel,
    *,
    seconds: float = 20.0,
    settle_s: float = 5.0,
    seed: int = 7,
) -> Run:
    """A closed loop: keep ``allowed`` requests in flight; each takes ``latency_of(in flight when sent)``."""
    rng = random.Random(seed)
    controller = ConcurrencyController(settings)
    now, answers = 0.0, 0
    in_flight: list[tuple[float, int, float]] = []  # (answered at, sequence, sent at)
    limits: list[int] = []
    while now < seconds:
        while len(in_flight) < controller.allowed(now):
            sequence = controller.sent(len(in_flight) + 1)
            heapq.heappush(in_flight, (now + latency_of(len(in_flight) + 1, rng), sequence, now))
        if not in_flight:
            now = controller.paused_until
            continue
        now, sequence, sent_at = heapq.heappop(in_flight)
        controller.on_answer(sequence, now - sent_at)
        answers += 1
        if now >= settle_s and not controller.measuring:
            limits.append(controller.concurrency)
    return Run(controller, limits, answers)


def _saturating(base_s: float, knee: int) -> LatencyModel:
    """Unloaded latency up to ``knee`` requests in flight, then proportional to them (Little's law)."""
    return lambda in_flight, rng: base_s * max(1.0, in_flight / knee)


def test_the_unloaded_latency_is_the_tail_of_requests_sent_one_at_a_time() -> None:
    controller = ConcurrencyController(ConcurrencySettings(baseline_samples=5, latency_quantile=0.75))
    for latency in (0.030, 0.010, 0.020, 0.012, 0.011):
        assert (controller.allowed(0.0), controller.concurrency) == (1, 1)
        _answer(controller, latency)
    assert (controller.measuring, controller.limit) == (False, 1.0)
    assert (controller.unloaded_s, controller.target_s) == (0.020, 0.040)


def test_quantile_interpolates_between_ranks() -> None:
    assert [quantile([4.0, 1.0, 3.0, 2.0], fraction) for fraction in (0.0, 0.5, 0.9, 1.0)] == [
        1.0, 2.5, pytest.approx(3.7), 4.0,
    ]  # fmt: skip


def test_the_start_doubles_the_limit_each_round_until_latency_rises_past_its_margin() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=4))  # unloaded 10 ms: target 20 ms
    limits = []
    for latency in (0.011, 0.010, 0.0095, 0.0125, 0.013, 0.010):
        _round(controller, latency)
        limits.append(controller.limit)
    # Up to 12.5 ms is within 1.25 x 10 ms: 1 -> 2 -> 4 -> 8 -> 16; 13 ms is not, and ends the start: x (20 / 13)
    # ** 0.5 from then on (13 ms is still the p90 of the latest answers), never a doubling again.
    step = (20 / 13) ** 0.5
    assert limits == [2.0, 4.0, 8.0, 16.0, pytest.approx(16 * step), pytest.approx(16 * step**2)]
    assert controller.starting is False


def test_the_start_reaches_a_predictor_that_needs_32_in_flight_in_5_rounds_instead_of_16() -> None:
    def rounds_to_reach_32(settings: ConcurrencySettings) -> int:
        controller, rounds = _with_baseline(settings), 0
        while controller.limit < 32:
            _round(controller, 0.010 * max(1.0, controller.limit / 32))  # 10 ms up to 32 in flight
            rounds += 1
        return rounds

    assert rounds_to_reach_32(ConcurrencySettings()) == 5
    assert rounds_to_reach_32(ConcurrencySettings(start_step=1.0)) == 16


def test_a_start_step_of_one_leaves_only_the_gradient_steps() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=4, start_step=1.0))
    _round(controller, 0.010)
    assert (controller.limit, controller.starting) == (1.25, False)


def test_overload_ends_the_start() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=4))
    _round(controller, 0.010)
    controller.on_overload(controller.sent(2), now=1.0, retry_after_s=None)
    assert (controller.limit, controller.starting) == (1.0, False)
    controller.allowed(2.0)
    _round(controller, 0.010)
    assert controller.limit == 1.25


def test_under_the_target_the_limit_grows_by_at_most_max_step_a_round() -> None:
    settings = ConcurrencySettings(baseline_samples=4, gain=0.5, max_step=1.25, start_step=1.0, knee_share=0.0)
    controller = _with_baseline(settings)
    controller.limit = 4.0
    _round(controller, 0.010)  # unloaded speed: (2 x 10 ms / 10 ms) ** 0.5 = 1.41, capped at 1.25
    assert controller.limit == 5.0
    _round(controller, 0.0180)  # close under the 20 ms target: a small step, (20 / 18) ** 0.5
    assert controller.limit == pytest.approx(5.0 * (20 / 18) ** 0.5)


def test_over_the_target_the_limit_shrinks_in_proportion_to_the_excess() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=4, gain=0.5, max_step=1.25))
    controller.limit = 16.0
    _round(controller, 0.0242)  # 21 % over the 20 ms target
    assert controller.limit == pytest.approx(16.0 * (20 / 24.2) ** 0.5)  # about 0.91: not a halving
    controller.limit = 16.0
    _round(controller, 0.5)  # far over: at most 1 / max_step a round
    assert controller.limit == pytest.approx(12.8)
    assert controller.decreases == 0


def test_a_limit_the_client_did_not_fill_does_not_grow() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=4))
    controller.limit = 8.0
    for _ in range(8):
        _answer(controller, 0.010, in_flight=3)  # the client kept only 3 in flight: fast, but no evidence for 9
    assert controller.limit == 8.0
    _round(controller, 0.030)  # slow answers still shrink it
    assert controller.limit < 8.0


def test_one_stalled_answer_in_the_window_does_not_shrink_the_limit() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=8, start_step=1.0, knee_share=0.0))
    controller.limit = 8.0
    _round(controller, 0.012)
    grown = controller.limit  # 10: a round is 10 answers now
    for latency in (0.012, 0.012, 0.5, 0.012, 0.012, 0.012, 0.012, 0.012, 0.012, 0.012):  # one 40x stall
        _answer(controller, latency, in_flight=int(controller.limit))
    assert controller.limit > grown


@pytest.mark.parametrize(("tolerance", "expected_limit"), [(2.0, 16), (1.5, 12), (3.0, 24)])
def test_without_the_knee_a_closed_loop_settles_where_latency_reaches_the_tolerance_without_oscillating(
    tolerance: float, expected_limit: int
) -> None:
    # 10 ms up to 8 in flight, then proportional: tolerance x 10 ms is reached at tolerance x 8 in flight.
    settings = ConcurrencySettings(latency_tolerance=tolerance, knee_share=0.0)
    run = _simulate(settings, _saturating(0.010, knee=8))
    settled = sorted(run.limits)
    low, median, high = settled[len(settled) // 20], settled[len(settled) // 2], settled[-len(settled) // 20]
    assert run.controller.decreases == 0
    assert abs(median - expected_limit) <= 0.15 * expected_limit
    assert 0.75 * median <= low <= high <= 1.25 * median  # no sawtooth: 90 % of the time within 25 %


@pytest.mark.parametrize("tolerance", [1.5, 2.0, 3.0])
def test_a_closed_loop_holds_at_the_knee_where_more_in_flight_only_queue(tolerance: float) -> None:
    # Past 8 in flight the latency grows and the throughput does not: the limit stays within the start margin of
    # 8 (a rise that keeps the latency within 1.25 x unloaded is never undone), for every tolerance, and the
    # job answers as many requests as at the tolerance, at a lower latency.
    run = _simulate(ConcurrencySettings(latency_tolerance=tolerance), _saturating(0.010, knee=8))
    at_tolerance = _simulate(ConcurrencySettings(latency_tolerance=tolerance, knee_share=0.0), _saturating(0.010, 8))
    settled = sorted(run.limits)
    assert 8 <= settled[len(settled) // 20] <= settled[-len(settled) // 20] <= 10
    assert run.answers >= 0.99 * at_tolerance.answers
    assert run.controller.ceiling is not None  # held: the rise past the knee was undone


def test_a_predictor_that_serves_one_request_at_a_time_gets_one() -> None:
    # Two in flight double the latency and add nothing: the start's rise to 2 is judged and undone.
    run = _simulate(ConcurrencySettings(), lambda in_flight, rng: 0.010 * in_flight)
    assert (set(run.limits), run.controller.ceiling) == ({1}, 1)


def test_a_batching_predictor_still_grows_to_the_tolerance() -> None:
    # Each request in flight adds 1/16 of the unloaded latency: throughput grows all the way, the tolerance binds.
    def batching(in_flight: int, rng: random.Random) -> float:
        return 0.010 * (1 + in_flight / 16)

    run = _simulate(ConcurrencySettings(latency_tolerance=1.5), batching)
    settled = sorted(run.limits)
    # 1.5 x the unloaded 10.6 ms is 15.9 ms, reached at 9.5 in flight.
    assert 9 <= settled[len(settled) // 20] <= settled[-len(settled) // 20] <= 10


def test_a_rise_that_did_not_pay_is_undone_and_held_until_the_probe() -> None:
    settings = ConcurrencySettings(baseline_samples=4, window=4, baseline_interval_s=0.0, probe_interval_s=20.0)
    controller = _with_baseline(settings)  # unloaded 10 ms; the loaded latency is taken over the latest 4 answers
    _round(controller, 0.010)
    assert controller.limit == 2.0  # the start doubles
    # Twice the latency at twice the requests: the same throughput. Judged on the round's 4 answers, all to
    # requests sent after the rise: undone.
    _round(controller, 0.020)
    assert (controller.limit, controller.ceiling, controller.starting) == (1.0, 1, False)
    _round(controller, 0.010)
    assert controller.limit == 1.0  # held, though under the target
    assert [controller.allowed(now) for now in (100.0, 119.9)] == [1, 1]
    assert controller.ceiling == 1
    controller.allowed(120.0)  # the probe: the limit may rise again, by gradient steps
    assert controller.ceiling is None
    _round(controller, 0.010)
    assert controller.limit == 1.25


def test_a_rise_that_paid_is_kept() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=4))
    _round(controller, 0.010)
    _round(controller, 0.014)  # 1.4 x the latency at 2 x the requests: 1.43 x the throughput, under 1.5: undone
    assert (controller.limit, controller.ceiling) == (1.0, 1)
    controller = _with_baseline(ConcurrencySettings(baseline_samples=4))
    _round(controller, 0.010)
    _round(controller, 0.013)  # 1.54 x the throughput: kept, and the limit steps on towards the 20 ms target
    _round(controller, 0.013)
    assert controller.ceiling is None
    assert controller.limit > 2.0


def test_noise_and_stalls_keep_the_limit_near_the_knee() -> None:
    def noisy(in_flight: int, rng: random.Random) -> float:
        latency = 0.010 * max(1.0, in_flight / 8) * rng.lognormvariate(0.0, 0.2)
        return latency * 10 if rng.random() < 0.02 else latency  # 2 % of answers stall 10x

    run = _simulate(ConcurrencySettings(), noisy)
    settled = sorted(run.limits)
    assert 6 <= settled[len(settled) // 20] <= settled[-len(settled) // 20] <= 12
    assert run.controller.decreases == 0


def test_overload_cuts_at_once_pauses_for_retry_after_and_acts_once_per_round() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=1))
    controller.limit = 10.0
    in_flight = [controller.sent(10) for _ in range(10)]
    controller.on_overload(in_flight[0], now=100.0, retry_after_s=2.5)
    assert (controller.limit, controller.paused_until, controller.decreases) == (5.0, 102.5, 1)
    controller.on_overload(in_flight[1], now=100.1, retry_after_s=3.0)  # sent before the back-off: no second cut
    assert (controller.limit, controller.paused_until, controller.decreases) == (5.0, 103.1, 1)
    controller.on_answer(in_flight[2], 0.5)  # sent before the back-off: says nothing about the new limit
    assert controller.limit == 5.0
    assert [controller.allowed(now) for now in (101.0, 103.0, 103.1)] == [0, 0, 5]


def test_overload_without_retry_after_uses_the_default_back_off_and_never_goes_below_one() -> None:
    controller = ConcurrencyController(ConcurrencySettings(default_backoff_s=0.3))
    controller.on_overload(controller.sent(1), now=10.0, retry_after_s=None)
    assert (controller.limit, controller.paused_until, controller.decreases) == (1.0, 10.3, 1)


def test_after_overload_ends_the_limit_recovers_to_the_same_level() -> None:
    """A predictor that answers 429 while more than 12 requests are in flight, for the first 5 s."""
    overloaded_until = 5.0
    clock = {"now": 0.0}

    settings = ConcurrencySettings()
    controller = ConcurrencyController(settings)
    rng = random.Random(3)
    latency_of = _saturating(0.010, knee=8)
    in_flight: list[tuple[float, int, float, bool]] = []
    limits_after: list[int] = []
    while clock["now"] < 20.0:
        now = clock["now"]
        while len(in_flight) < controller.allowed(now):
            sequence = controller.sent(len(in_flight) + 1)
            refused = now < overloaded_until and len(in_flight) + 1 > 12
            delay = 0.001 if refused else latency_of(len(in_flight) + 1, rng)
            heapq.heappush(in_flight, (now + delay, sequence, now, refused))
        if not in_flight:
            clock["now"] = controller.paused_until
            continue
        answered_at, sequence, sent_at, refused = heapq.heappop(in_flight)
        clock["now"] = answered_at
        if refused:
            controller.on_overload(sequence, answered_at, retry_after_s=0.1)
        else:
            controller.on_answer(sequence, answered_at - sent_at)
        if answered_at > 10.0 and not controller.measuring:
            limits_after.append(controller.concurrency)
    assert controller.decreases >= 1
    settled = sorted(limits_after)
    assert 8 <= settled[len(settled) // 2] <= 10  # back at the knee once the 429s stopped


def test_the_unloaded_latency_is_measured_again_each_interval_and_pools_recent_measurements() -> None:
    settings = ConcurrencySettings(baseline_samples=2, baseline_history=2, baseline_interval_s=5.0)
    controller = _with_baseline(settings, latency_s=0.010)
    controller.limit = 8.0
    assert controller.allowed(100.0) == 8  # the interval starts with the first request after a measurement
    assert controller.allowed(104.9) == 8
    before = [controller.sent(8) for _ in range(8)]  # in flight when the interval is over
    assert (controller.allowed(105.0), controller.concurrency) == (1, 1)
    for sequence in before:
        controller.on_answer(sequence, 0.5)  # sent under load: not an unloaded sample
    assert (controller.measuring, controller.unloaded_s) == (True, 0.010)
    for _ in range(2):
        assert controller.allowed(105.1) == 1
        _answer(controller, 0.030)  # the node got slower: one request alone now takes 30 ms
    # Pooled with the previous measurement: p90 of (10, 10, 30, 30) ms; the limit it had is back.
    assert (controller.measuring, controller.unloaded_s, controller.allowed(105.2)) == (False, 0.030, 8)
    for measured_at, unloaded in ((111.0, 0.030), (117.0, 0.012)):  # each measurement drops the oldest one
        controller.allowed(measured_at)  # the interval starts
        controller.allowed(measured_at + 5.0)  # and ends: measure again
        for _ in range(2):
            _answer(controller, 0.012)
        assert controller.unloaded_s == pytest.approx(unloaded)  # (30, 30, 12, 12) ms, then (12, 12, 12, 12) ms


def test_a_zero_interval_measures_the_unloaded_latency_once() -> None:
    controller = _with_baseline(ConcurrencySettings(baseline_samples=1, baseline_interval_s=0.0))
    controller.limit = 4.0
    assert [controller.allowed(now) for now in (0.0, 100.0, 10_000.0)] == [4, 4, 4]


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"max_concurrency": 0}, "max concurrency 0"),
        ({"latency_tolerance": 1.0}, "latency tolerance 1"),
        ({"latency_quantile": 1.0}, "latency quantile 1"),
        ({"overload_factor": 1.5}, "overload factor 1.5"),
        ({"baseline_samples": 0}, "baseline samples 0"),
        ({"window": 0}, "window 0"),
        ({"baseline_interval_s": -1.0}, "baseline interval -1 s"),
        ({"gain": 0.0}, "gain 0"),
        ({"max_step": 1.0}, "max step 1"),
        ({"start_step": 0.5}, "start step 0.5 or start margin 1.25 is below 1"),
        ({"start_margin": 0.9}, "start step 2 or start margin 0.9 is below 1"),
        ({"knee_share": 1.0}, "knee share 1 is not in"),
        ({"probe_interval_s": 0.0}, "probe interval 0 s is not above 0"),
    ],
)
def test_knobs_out_of_range_are_refused(knobs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ConcurrencySettings(**knobs)  # type: ignore[arg-type]
