"""How the rollout step picks its arms and settings from the live InferenceService and the options."""

from __future__ import annotations

from typing import Any

import pytest

from aiserving.steps.rollout import RolloutOptions, arms_for, parse_labels, settings_for
from progressive_delivery.analysis import AnalysisConfig
from progressive_delivery.queries import Arm
from progressive_delivery.rollout_settings import RolloutSettings
from serving_core.errors import InvalidInputError


def _serverless(rolled_out: str | None, latest: str) -> dict[str, Any]:
    predictor = {"latestCreatedRevision": latest, **({"latestRolledoutRevision": rolled_out} if rolled_out else {})}
    return {
        "metadata": {"name": "iris", "namespace": "ai"},
        "spec": {"predictor": {"canaryTrafficPercent": 0}},
        "status": {"deploymentMode": "Serverless", "components": {"predictor": predictor}},
    }


def test_serverless_arms_are_the_rolled_out_and_latest_revisions() -> None:
    stable, canary = arms_for(_serverless("iris-predictor-00001", "iris-predictor-00002"), AnalysisConfig(),
                              RolloutOptions())  # fmt: skip
    assert stable == Arm("stable", {"namespace_name": "ai", "revision_name": "iris-predictor-00001"})
    assert canary == Arm("canary", {"namespace_name": "ai", "revision_name": "iris-predictor-00002"})


def test_serverless_without_a_second_revision_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no separate stable and canary revisions"):
        arms_for(_serverless(None, "iris-predictor-00001"), AnalysisConfig(), RolloutOptions())


def test_standard_arms_take_the_canary_name_from_the_spec() -> None:
    document = {
        "metadata": {"name": "iris", "namespace": "ai"},
        "spec": {"predictor": {}, "canary": [{"trafficPercent": 0, "predictor": {"name": "canary-1a2b3c4d"}}]},
        "status": {"deploymentMode": "RawDeployment"},
    }
    _, canary = arms_for(document, AnalysisConfig(mode="standard"), RolloutOptions())
    assert canary == Arm("canary", {"namespace": "ai"}, {"pod": r"iris-canary\-1a2b3c4d-predictor-[a-z0-9]+-[a-z0-9]+"})


def test_given_labels_win() -> None:
    options = RolloutOptions(stable_labels=parse_labels("instance=a:1, job=m"), canary_labels={"instance": "b:2"})
    assert arms_for(_serverless(None, "x"), AnalysisConfig(), options) == (
        Arm("stable", {"instance": "a:1", "job": "m"}), Arm("canary", {"instance": "b:2"})
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="'job' is not NAME=VALUE"):
        parse_labels("job")


def test_settings_come_from_the_options_and_the_analysis_config() -> None:
    config = AnalysisConfig(interval_seconds=5, inconclusive_budget_seconds=600)
    settings = settings_for(RolloutOptions(warmup_s=10, step_min_duration_s=60, failure_limit=2), config)
    assert settings == RolloutSettings(
        interval_s=5, warmup_s=10, step_min_duration_s=60, undecided_budget_s=600, failure_limit=2,
        lease_duration_s=15, evidence_window="rollout",
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="undecided_policy"):
        settings_for(RolloutOptions(undecided_policy="promote"), config)  # type: ignore[arg-type]
