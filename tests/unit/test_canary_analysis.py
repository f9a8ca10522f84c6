"""One analysis interval from PromQL answers: rendered queries, HOLD on missing data, the verdict's audit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from progressive_delivery.analysis import AnalysisConfig, Arm, Outcome, QueryRecord, analyse
from progressive_delivery.metrics import QueryResult, QueryStatus, RangeResult, Sample
from progressive_delivery.queries import QueryTemplates, bucket_regex, serverless_arms, standard_arms
from serving_core.errors import InvalidInputError

STABLE = Arm("stable", {"instance": "127.0.0.1:1001"})
CANARY = Arm("canary", {"instance": "127.0.0.1:1002"})
CONFIG = AnalysisConfig(mode="wrapper", min_requests_per_arm=100)
SERVER_ERRORS = 'code=~"5..|INTERNAL|UNAVAILABLE|UNKNOWN|DATA_LOSS"'


class AnsweringSource:
    """A MetricsSource answering from a table of PromQL → value (or status), recording what was asked."""

    def __init__(self, answers: dict[str, float | QueryStatus | list[Sample]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def instant(self, query: str, at: float) -> QueryResult:
        self.asked.append(query)
        answer = self.answers.get(query, QueryStatus.EMPTY)
        if isinstance(answer, QueryStatus):
            return QueryResult(query, at, answer, detail="" if answer is QueryStatus.EMPTY else "connection refused")
        if isinstance(answer, list):
            return QueryResult(query, at, QueryStatus.OK, tuple(answer))
        return QueryResult(query, at, QueryStatus.OK, (Sample({}, answer),))

    def range(self, query: str, start: float, end: float, step: float) -> RangeResult:
        raise AssertionError("the analysis uses instant queries only")


def wrapper_answers(arm: Arm, requests: float, errors: float, fast: float, p99: float) -> dict[str, float]:
    selector = arm.matchers()
    return {
        f"sum(increase(model_requests_total{{{selector}}}[60s]))": requests,
        f"sum(increase(model_requests_total{{{selector},{SERVER_ERRORS}}}[60s]))": errors,
        f'sum(increase(model_request_duration_seconds_bucket{{{selector},le=~"0\\\\.5"}}[60s]))': fast,
        f"histogram_quantile(0.99, sum by (le) (rate(model_request_duration_seconds_bucket{{{selector}}}[60s])))": p99,
    }


def test_wrapper_queries_render_exactly() -> None:
    templates = CONFIG.query_templates()
    render = {
        name: templates.render(name, CANARY, window_seconds=60, slow_seconds=0.5, quantile=0.99)
        for name in ("requests", "errors", "fast", "latency_quantile", "predictions")
    }
    assert render == {
        "requests": 'sum(increase(model_requests_total{instance="127.0.0.1:1002"}[60s]))',
        "errors": f'sum(increase(model_requests_total{{instance="127.0.0.1:1002",{SERVER_ERRORS}}}[60s]))',
        "fast": 'sum(increase(model_request_duration_seconds_bucket{instance="127.0.0.1:1002",le=~"0\\\\.5"}[60s]))',
        "latency_quantile": "histogram_quantile(0.99, sum by (le) "
        '(rate(model_request_duration_seconds_bucket{instance="127.0.0.1:1002"}[60s])))',
        "predictions": 'sum by (class) (increase(model_prediction_total{instance="127.0.0.1:1002"}[60s]))',
    }


def test_bucket_regex_matches_both_spellings_of_whole_numbers() -> None:
    assert (bucket_regex(1.0), bucket_regex(0.25), bucket_regex(500.0)) == ("1(\\\\.0)?", "0\\\\.25", "500(\\\\.0)?")


def test_serverless_and_standard_arms_select_revisions_and_deployment_pods() -> None:
    stable, canary = serverless_arms("prod", "iris-predictor-00001", "iris-predictor-00002")
    assert canary.matchers() == 'namespace_name="prod",revision_name="iris-predictor-00002"'
    assert AnalysisConfig(mode="serverless").query_templates().render(
        "fast", canary, window_seconds=300, slow_seconds=0.5, quantile=0.99
    ) == (
        "sum(increase(revision_app_request_latencies_bucket"
        '{namespace_name="prod",revision_name="iris-predictor-00002",le=~"500(\\\\.0)?"}[300s]))'
    )
    stable, canary = standard_arms("prod", "iris", "candidate")
    assert stable.matchers() == 'namespace="prod",pod=~"iris-predictor-[a-z0-9]+-[a-z0-9]+"'
    assert canary.matchers() == 'namespace="prod",pod=~"iris-candidate-predictor-[a-z0-9]+-[a-z0-9]+"'


def test_a_good_canary_passes_with_every_query_in_the_audit() -> None:
    source = AnsweringSource(
        wrapper_answers(STABLE, 3000, 30, 2950, 0.2) | wrapper_answers(CANARY, 3000, 29, 2955, 0.21)
    )
    verdict = analyse(source, CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    assert verdict.outcome is Outcome.PASS
    assert [check.name for check in verdict.checks] == ["error", "slow", "latency"]
    assert all(check.outcome is Outcome.PASS for check in verdict.checks)
    assert verdict.counts == {
        "stable": {"requests": 3000, "errors": 30, "slow": 50},
        "canary": {"requests": 3000, "errors": 29, "slow": 45},
    }
    assert [(record.arm, record.name) for record in verdict.queries] == [
        ("stable", "requests"),
        ("stable", "errors"),
        ("stable", "fast"),
        ("canary", "requests"),
        ("canary", "errors"),
        ("canary", "fast"),
        ("stable", "latency_quantile"),
        ("canary", "latency_quantile"),
        ("stable", "predictions"),
        ("canary", "predictions"),
    ]
    assert verdict.queries[0] == QueryRecord(
        "stable", "requests", 'sum(increase(model_requests_total{instance="127.0.0.1:1001"}[60s]))', 1060.0, "ok", 3000
    )
    assert json.loads(json.dumps(verdict.to_json_dict()))["outcome"] == "PASS"


def test_errors_fail_and_the_reason_says_so() -> None:
    source = AnsweringSource(
        wrapper_answers(STABLE, 3000, 30, 2950, 0.2) | wrapper_answers(CANARY, 3000, 150, 2950, 0.2)
    )
    verdict = analyse(source, CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    assert verdict.outcome is Outcome.FAIL
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("error: canary 0.0500 (150/3000) vs stable 0.0100; log Bayes factor")


def test_slow_requests_fail_and_the_latency_guard_too() -> None:
    source = AnsweringSource(
        wrapper_answers(STABLE, 3000, 30, 2950, 0.2) | wrapper_answers(CANARY, 3000, 30, 2500, 0.9)
    )
    verdict = analyse(source, CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    assert {check.name: check.outcome for check in verdict.checks} == {
        "error": Outcome.PASS,
        "slow": Outcome.FAIL,
        "latency": Outcome.FAIL,
    }


def test_no_5xx_series_means_zero_errors() -> None:
    answers = wrapper_answers(STABLE, 3000, 0, 2950, 0.2) | wrapper_answers(CANARY, 3000, 0, 2950, 0.2)
    answers = {query: value for query, value in answers.items() if SERVER_ERRORS not in query}
    verdict = analyse(AnsweringSource(answers), CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    assert verdict.counts["canary"]["errors"] == 0
    assert verdict.outcome is Outcome.PASS


def test_prometheus_unreachable_holds_every_check() -> None:
    source = AnsweringSource({})
    source.answers = dict.fromkeys(
        wrapper_answers(STABLE, 0, 0, 0, 0) | wrapper_answers(CANARY, 0, 0, 0, 0), QueryStatus.UNREACHABLE
    )
    verdict = analyse(source, CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    assert verdict.outcome is Outcome.HOLD
    assert [(check.name, check.outcome) for check in verdict.checks] == [
        ("error", Outcome.HOLD),
        ("slow", Outcome.HOLD),
        ("distribution", Outcome.HOLD),
    ]
    assert "stable requests: Prometheus unreachable (connection refused)" in verdict.reasons[0]
    # After the first unanswered query the tick asks no more: a hung Prometheus costs one timeout.
    assert len(source.asked) == 1
    assert len(verdict.queries) == 8


def test_an_arm_without_series_holds_and_names_its_labels() -> None:
    source = AnsweringSource(wrapper_answers(STABLE, 3000, 30, 2950, 0.2))
    verdict = analyse(source, CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    assert verdict.outcome is Outcome.HOLD
    assert 'canary: no request series match {instance="127.0.0.1:1002"}' in verdict.reasons[0]


def test_a_slow_threshold_off_the_bucket_grid_holds_with_the_fix() -> None:
    answers = wrapper_answers(STABLE, 3000, 30, 2950, 0.2) | wrapper_answers(CANARY, 3000, 30, 2950, 0.2)
    config = CONFIG.model_copy(update={"slow_threshold_seconds": 0.3})
    verdict = analyse(AnsweringSource(answers), config, STABLE, CANARY, start=1000.0, end=1060.0)
    assert verdict.outcome is Outcome.HOLD
    assert "set slow_threshold_seconds to a bucket boundary" in verdict.reasons[0]


def test_few_requests_are_inconclusive_and_skip_the_latency_guard() -> None:
    source = AnsweringSource(wrapper_answers(STABLE, 900, 9, 890, 0.2) | wrapper_answers(CANARY, 50, 0, 50, 0.2))
    verdict = analyse(source, CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert [check.name for check in verdict.checks] == ["error", "slow"]


def test_class_distribution_shift_fails_a_classifier() -> None:
    answers: dict[str, float | QueryStatus | list[Sample]] = {}
    answers |= wrapper_answers(STABLE, 3000, 30, 2950, 0.2) | wrapper_answers(CANARY, 3000, 30, 2950, 0.2)
    for arm, counts in ((STABLE, {"0": 1000, "1": 1000, "2": 1000}), (CANARY, {"0": 2000, "1": 500, "2": 500})):
        query = f"sum by (class) (increase(model_prediction_total{{{arm.matchers()}}}[60s]))"
        answers[query] = [Sample({"class": label}, value) for label, value in counts.items()]
    verdict = analyse(AnsweringSource(answers), CONFIG, STABLE, CANARY, start=1000.0, end=1060.0)
    distribution = verdict.checks[-1]
    assert (distribution.name, distribution.outcome) == ("distribution", Outcome.FAIL)
    assert distribution.values["js_divergence"] == pytest.approx(0.0817, abs=1e-3)


def test_bad_windows_and_arm_names_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="is empty"):
        analyse(AnsweringSource({}), CONFIG, STABLE, CANARY, start=10.0, end=10.0)
    with pytest.raises(InvalidInputError, match="both arms are named"):
        analyse(AnsweringSource({}), CONFIG, STABLE, Arm("stable", {"a": "b"}), start=0.0, end=10.0)
    with pytest.raises(InvalidInputError, match="has no labels"):
        Arm("canary", {})


def test_config_loads_from_yaml_with_defaults_and_custom_queries(tmp_path: Path) -> None:
    path = tmp_path / "analysis.yaml"
    path.write_text(
        "mode: standard\nmin_requests_per_arm: 500\nerror: {relative: 0.5, absolute: 0.001, guardrail: 0.02}\n"
        "queries:\n  requests: sum(increase(my_requests_total{$selector}[$window]))\n"
        "  errors: sum(increase(my_errors_total{$selector}[$window]))\n"
        '  fast: sum(increase(my_latency_bucket{$selector,le=~"$le"}[$window]))\n'
        "  latency_quantile: histogram_quantile($quantile, sum by (le) "
        "(rate(my_latency_bucket{$selector}[$window])))\n",
        encoding="utf-8",
    )
    config = AnalysisConfig.from_yaml(path)
    assert (config.mode, config.min_requests_per_arm, config.template_name) == ("standard", 500, "custom")
    assert (config.error.relative, config.error.guardrail, config.slow.relative) == (0.5, 0.02, 1.0)
    assert config.query_templates().render("errors", CANARY, window_seconds=30, slow_seconds=1, quantile=0.5) == (
        'sum(increase(my_errors_total{instance="127.0.0.1:1002"}[30s]))'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mode: mesh\n", "mode: Input should be 'serverless', 'standard' or 'wrapper'"),
        ("template: datadog\n", "unknown query template set 'datadog'"),
        ("error: {relative: 0, absolute: 0}\n", "a regression of nothing cannot be told apart"),
        ("min_sample: 3\n", "min_sample: Extra inputs are not permitted"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_bad_analysis_files_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "analysis.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message.replace("(", "\\(").replace(")", "\\)")):
        AnalysisConfig.from_yaml(path)


def test_unknown_placeholders_in_a_custom_query_are_refused() -> None:
    templates = QueryTemplates(requests="sum(x{$arm})", errors="e", fast="f", latency_quantile="q")
    with pytest.raises(InvalidInputError, match="unknown placeholder"):
        templates.render("requests", CANARY, window_seconds=30, slow_seconds=0.5, quantile=0.99)


def test_verdict_json_turns_nan_into_null() -> None:
    source = AnsweringSource(
        wrapper_answers(STABLE, 3000, 30, 2950, math.nan) | wrapper_answers(CANARY, 3000, 30, 2950, 0.2)
    )
    document = analyse(source, CONFIG, STABLE, CANARY, start=1000.0, end=1060.0).to_json_dict()
    assert json.loads(json.dumps(document, allow_nan=False))["outcome"] == "HOLD"
