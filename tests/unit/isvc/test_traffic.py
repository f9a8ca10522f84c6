"""Reading mode, readiness and the traffic split from an InferenceService's status."""

from __future__ import annotations

from typing import Any

from inference_services.readiness import serving_as_written, stable_serves_everything
from inference_services.traffic import DeploymentMode, TrafficShare, canary_in_progress, deployment_mode, traffic_split

READY = [{"type": "Ready", "status": "True"}, {"type": "PredictorReady", "status": "True"}]


def knative(percent: int | None, traffic: list[dict[str, Any]], latest: str = "m-predictor-00002") -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {}}
    if percent is not None:
        predictor["canaryTrafficPercent"] = percent
    return {
        "metadata": {"annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
        "spec": {"predictor": predictor},
        "status": {
            "conditions": READY,
            "components": {"predictor": {"latestReadyRevision": latest, "latestCreatedRevision": latest,
                                         "latestRolledoutRevision": "m-predictor-00001", "traffic": traffic}},
        },
    }  # fmt: skip


def test_knative_canary_split() -> None:
    document = knative(
        10,
        [
            {"revisionName": "m-predictor-00002", "percent": 10, "latestRevision": True},
            {"revisionName": "m-predictor-00001", "percent": 90, "latestRevision": False, "tag": "prev"},
        ],
    )
    assert deployment_mode(document) is DeploymentMode.KNATIVE
    assert canary_in_progress(document)
    assert traffic_split(document) == [
        TrafficShare("m-predictor-00002", 10, "canary", True),
        TrafficShare("m-predictor-00001", 90, "stable", True),
    ]
    assert serving_as_written(document)
    assert not stable_serves_everything(document)
    wrong_split = knative(20, document["status"]["components"]["predictor"]["traffic"])
    assert not serving_as_written(wrong_split)


def test_knative_rolled_back_canary_serves_the_stable_revision() -> None:
    document = knative(0, [{"revisionName": "m-predictor-00001", "percent": 100, "latestRevision": False}])
    document["status"]["conditions"] = [{"type": "Ready", "status": "False", "message": "revision failed"}]
    assert not canary_in_progress(document)
    assert stable_serves_everything(document)
    assert not serving_as_written(document)


def test_standard_split_from_canary_statuses() -> None:
    document = {
        "metadata": {"annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
        "spec": {"predictor": {"name": "stable"},
                 "canary": [{"trafficPercent": 20, "predictor": {"name": "canary-1"}}]},
        "status": {"deploymentMode": "Standard", "conditions": READY,
                   "canaryStatuses": [{"name": "canary-1", "ready": True, "trafficPercent": 20}]},
    }  # fmt: skip
    assert deployment_mode(document) is DeploymentMode.STANDARD
    assert canary_in_progress(document)
    assert traffic_split(document) == [
        TrafficShare("stable", 80, "stable", True),
        TrafficShare("canary-1", 20, "canary", True),
    ]
    assert serving_as_written(document)
    document["status"]["canaryStatuses"][0].update(ready=False, trafficPercent=0)
    assert not serving_as_written(document)
