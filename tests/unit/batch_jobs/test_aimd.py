"""AIMD decisions: baseline first, +1 per round of answers, halve on slow answers or 429/503, once per round."""

from __future__ import annotations

import pytest

from batch_jobs.aimd import AimdController, AimdSettings
from serving_core.errors import InvalidInputError
from serving_core.retry_after import retry_after_seconds


def _answer(controller: AimdController, latency_s: float) -> None:
    controller.on_answer(controller.sent(), latency_s)


def _with_baseline(settings: AimdSettings, latency_s: float = 0.01) -> AimdController:
    controller = AimdController(settings)
    for _ in range(settings.baseline_samples):
        assert controller.allowed(0.0) == 1  # the baseline is measured unloaded: one request at a time
        _answer(controller, latency_s)
    return controller


def test_baseline_is_the_median_of_the_unloaded_answers() -> None:
    controller = AimdController(AimdSettings(baseline_samples=3))
    for latency in (0.030, 0.010, 0.020):
        _answer(controller, latency)
    assert (controller.baseline_s, controller.limit) == (0.020, 1.0)


def test_fast_answers_add_one_request_per_round_up_to_the_ceiling() -> None:
    controller = _with_baseline(AimdSettings(max_concurrency=4, baseline_samples=2))
    _answer(controller, 0.01)  # 1 + 1/1
    assert controller.limit == 2.0
    _answer(controller, 0.01)
    _answer(controller, 0.01)  # a round of two answers at limit 2: +1/2 each
    assert controller.limit == pytest.approx(2.9, abs=0.05)
    for _ in range(50):
        _answer(controller, 0.01)
    assert (controller.limit, controller.allowed(0.0)) == (4.0, 4)


def test_a_slow_round_halves_the_limit_once() -> None:
    controller = _with_baseline(AimdSettings(max_concurrency=64, baseline_samples=2))
    controller.limit = 16.0
    in_flight = [controller.sent() for _ in range(24)]
    for sequence in in_flight[:15]:
        controller.on_answer(sequence, 0.05)  # 5x the baseline, but the round of 16 is not complete yet
    assert controller.decreases == 0
    grown = controller.limit  # each answer of the round still added 1/limit
    controller.on_answer(in_flight[15], 0.05)
    assert (controller.limit, controller.decreases) == (grown / 2, 1)
    for sequence in in_flight[16:]:
        controller.on_answer(sequence, 0.05)  # sent before the decrease: ignored
    assert (controller.limit, controller.decreases) == (grown / 2, 1)
    while controller.decreases == 1:  # a round at the new limit (about 9 answers), still slow
        _answer(controller, 0.05)
    assert controller.limit < grown / 4 + 1


def test_one_stalled_answer_in_a_round_does_not_halve() -> None:
    controller = _with_baseline(AimdSettings(baseline_samples=4))
    controller.limit = 4.0
    for latency in (0.01, 0.5, 0.012, 0.011):  # a 50x stall among normal answers
        _answer(controller, latency)
    assert controller.decreases == 0
    assert controller.limit > 4.0


def test_a_faster_round_lowers_the_baseline() -> None:
    controller = _with_baseline(AimdSettings(baseline_samples=2), latency_s=0.04)  # measured at a busy moment
    for _ in range(2):
        _answer(controller, 0.01)
    assert controller.baseline_s == 0.01


def test_overload_pauses_for_retry_after_and_halves() -> None:
    controller = _with_baseline(AimdSettings(baseline_samples=1))
    controller.limit = 10.0
    controller.on_overload(controller.sent(), now=100.0, retry_after_s=2.5)
    assert (controller.limit, controller.paused_until) == (5.0, 102.5)
    assert controller.allowed(101.0) == 0
    assert controller.allowed(102.5) == 5


def test_overload_without_retry_after_uses_the_default_back_off_and_never_goes_below_one() -> None:
    controller = AimdController(AimdSettings(default_backoff_s=0.3))
    controller.on_overload(controller.sent(), now=10.0, retry_after_s=None)
    assert (controller.limit, controller.paused_until) == (1.0, 10.3)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), (None, None), ("soon", None),
     ("Sun, 06 Nov 1994 08:49:37 GMT", 7.0)],
)  # fmt: skip
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, now=784111770.0) == expected


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"max_concurrency": 0}, "max concurrency 0"),
        ({"latency_tolerance": 1.0}, "latency tolerance 1"),
        ({"decrease_factor": 1.5}, "decrease factor 1.5"),
        ({"baseline_samples": 0}, "baseline samples 0"),
        ({"baseline_interval_s": -1.0}, "baseline interval -1 s"),
    ],
)
def test_knobs_out_of_range_are_refused(knobs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        AimdSettings(**knobs)  # type: ignore[arg-type]


def test_the_unloaded_latency_is_measured_again_each_interval_and_may_rise() -> None:
    controller = _with_baseline(AimdSettings(baseline_samples=2, baseline_interval_s=5.0), latency_s=0.01)
    controller.limit = 8.0
    assert controller.allowed(100.0) == 8  # the interval starts with the first request after a measurement
    assert controller.allowed(104.9) == 8
    before = [controller.sent() for _ in range(8)]  # in flight when the interval is over
    assert (controller.allowed(105.0), controller.concurrency) == (1, 1)
    for sequence in before:
        controller.on_answer(sequence, 0.5)  # sent under load: not an unloaded sample
    assert (controller.measuring, controller.baseline_s) == (True, 0.01)
    for _ in range(2):
        assert controller.allowed(105.1) == 1
        _answer(controller, 0.03)  # the node got slower: one request alone now takes 30 ms
    assert (controller.measuring, controller.baseline_s, controller.allowed(105.2)) == (False, 0.03, 8)
    for _ in range(8):
        _answer(controller, 0.05)  # below 2 x the new baseline: no back-off, the limit grows
    assert (controller.decreases, controller.limit > 8.0) == (0, True)


def test_a_zero_interval_measures_the_baseline_once() -> None:
    controller = _with_baseline(AimdSettings(baseline_samples=1, baseline_interval_s=0.0))
    controller.limit = 4.0
    assert [controller.allowed(now) for now in (0.0, 100.0, 10_000.0)] == [4, 4, 4]
