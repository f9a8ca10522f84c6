"""Read an InferenceService's mode, readiness and traffic split from its status, in both modes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from serving_core.kube_objects import (
    Condition,
    Document,
    annotations_of,
    conditions,
    predictor_spec,
    predictor_status,
    spec,
    status,
)

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"


class DeploymentMode(StrEnum):
    """KServe deployment modes this project drives."""

    KNATIVE = "knative"
    STANDARD = "standard"

    @property
    def annotation_value(self) -> str:
        """The legacy value, understood by every KServe from 0.14 to 0.21 (0.16+ rewrites it)."""
        return "Serverless" if self is DeploymentMode.KNATIVE else "RawDeployment"


_MODE_VALUES = {
    "serverless": DeploymentMode.KNATIVE,
    "knative": DeploymentMode.KNATIVE,
    "rawdeployment": DeploymentMode.STANDARD,
    "standard": DeploymentMode.STANDARD,
}


@dataclass(frozen=True)
class TrafficShare:
    """One revision (Knative) or predictor (Standard) and the percent of requests it gets."""

    revision: str
    percent: int
    role: str  # "stable" or "canary"
    ready: bool


def deployment_mode(document: Document) -> DeploymentMode:
    """The effective mode: ``status.deploymentMode``, else the annotation (both spellings), else Knative."""
    status_mode = str(status(document).get("deploymentMode") or "").lower()
    annotation = str(annotations_of(document).get(MODE_ANNOTATION) or "").lower()
    return _MODE_VALUES.get(status_mode) or _MODE_VALUES.get(annotation) or DeploymentMode.KNATIVE


def condition(document: Document, kind: str) -> Condition | None:
    """The status condition of type ``kind``, if reported (a copy)."""
    for entry in conditions(document):
        if entry.get("type") == kind:
            return entry.copy()
    return None


def is_true(document: Document, kind: str) -> bool:
    """Whether condition ``kind`` has status True."""
    found = condition(document, kind)
    return found is not None and found.get("status") == "True"


def observed_generation(document: Document) -> int:
    """``status.observedGeneration`` (0 when the controller has not reported yet)."""
    return int(status(document).get("observedGeneration") or 0)


def canary_in_progress(document: Document) -> bool:
    """Knative: ``canaryTrafficPercent`` between 1 and 99; Standard: any ``spec.canary`` entry."""
    if deployment_mode(document) is DeploymentMode.STANDARD:
        return bool(spec(document).get("canary"))
    percent = predictor_spec(document).get("canaryTrafficPercent")
    return percent is not None and 0 < int(percent) < 100


def traffic_split(document: Document) -> list[TrafficShare]:
    """Who gets what percent now, as the controller reports it."""
    if deployment_mode(document) is DeploymentMode.STANDARD:
        canaries = status(document).get("canaryStatuses") or []
        stable_name = predictor_spec(document).get("name") or "predictor"
        stable_percent = 100 - sum(int(entry.get("trafficPercent") or 0) for entry in canaries)
        shares = [TrafficShare(stable_name, stable_percent, "stable", is_true(document, "PredictorReady"))]
        shares += [
            TrafficShare(str(entry["name"]), int(entry.get("trafficPercent") or 0), "canary", bool(entry.get("ready")))
            for entry in canaries
        ]
        return shares
    predictor = predictor_status(document)
    ready_revision = predictor.get("latestReadyRevision")
    shares = []
    for entry in predictor.get("traffic") or []:
        splitting = entry.get("latestRevision") and int(entry.get("percent") or 0) < 100
        shares.append(
            TrafficShare(
                str(entry.get("revisionName")),
                int(entry.get("percent") or 0),
                "canary" if splitting else "stable",
                entry.get("revisionName") == ready_revision or not entry.get("latestRevision"),
            )
        )
    return shares


def serving_revision(document: Document) -> str | None:
    """The revision or predictor that gets 100 %, or None while traffic is split or unknown."""
    full = [share.revision for share in traffic_split(document) if share.percent == 100]
    return full[0] if full else None
