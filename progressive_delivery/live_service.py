"""What a rollout needs to know about the live InferenceService, read from its document in both KServe modes.

Serverless (Knative) mode splits traffic with ``spec.predictor.canaryTrafficPercent`` between the latest
revision and the last rolled-out one; Standard (RawDeployment, KServe >= 0.20) mode with
``spec.canary[].trafficPercent`` next to the stable ``spec.predictor``. The rollout only ever writes these
fields, so comparing them (and ``metadata.generation``) with what it wrote last tells it whether someone
else changed the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from serving_core.kube_objects import Document, annotations_of, metadata, predictor_spec, spec, status

STATE_ANNOTATION = "progressive.aiserving.creativeflow.ai/state"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"


class ServingMode(StrEnum):
    """The two KServe deployment modes a rollout drives."""

    SERVERLESS = "serverless"
    STANDARD = "standard"


_MODES = {
    "serverless": ServingMode.SERVERLESS,
    "knative": ServingMode.SERVERLESS,
    "rawdeployment": ServingMode.STANDARD,
    "standard": ServingMode.STANDARD,
}


def serving_mode(document: Document) -> ServingMode:
    """The effective mode: ``status.deploymentMode``, else the annotation (old and new spellings), else Serverless."""
    reported = str(status(document).get("deploymentMode") or "").lower()
    annotated = str(annotations_of(document).get(MODE_ANNOTATION) or "").lower()
    return _MODES.get(reported) or _MODES.get(annotated) or ServingMode.SERVERLESS


@dataclass(frozen=True)
class LiveService:
    """The facts about an InferenceService that a rollout tick reads."""

    name: str
    namespace: str
    mode: ServingMode
    generation: int
    observed_generation: int
    resource_version: str
    # The canary percent written in the spec; None when no canary is configured (promoted or rolled back).
    canary_percent: int | None
    # The canary percent the controller reports as serving now; None before it reports a split.
    serving_canary_percent: int | None
    canary_ready: bool
    state_annotation: str | None
    shadow_logger_url: str | None

    @classmethod
    def from_document(cls, document: Document) -> LiveService:
        """Read the facts from a live document."""
        mode = serving_mode(document)
        meta = metadata(document)
        logger = predictor_spec(document).get("logger") or {}
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            mode=mode,
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status(document).get("observedGeneration") or 0),
            resource_version=str(meta.get("resourceVersion") or ""),
            canary_percent=_spec_canary_percent(document, mode),
            serving_canary_percent=_serving_canary_percent(document, mode),
            canary_ready=_canary_ready(document, mode),
            state_annotation=annotations_of(document).get(STATE_ANNOTATION),
            shadow_logger_url=str(logger["url"]) if isinstance(logger, dict) and logger.get("url") else None,
        )


def _spec_canary_percent(document: Document, mode: ServingMode) -> int | None:
    if mode is ServingMode.STANDARD:
        entries = spec(document).get("canary") or []
        return int(entries[0].get("trafficPercent") or 0) if entries else None
    percent = predictor_spec(document).get("canaryTrafficPercent")
    return None if percent is None else int(percent)


def _serving_canary_percent(document: Document, mode: ServingMode) -> int | None:
    if mode is ServingMode.STANDARD:
        entries = status(document).get("canaryStatuses") or []
        return int(entries[0].get("trafficPercent") or 0) if entries else None
    traffic = ((status(document).get("components") or {}).get("predictor") or {}).get("traffic") or []
    if len(traffic) < 2:
        # One target with everything: no split is being served.
        return None
    latest = [entry for entry in traffic if entry.get("latestRevision")]
    return int(latest[0].get("percent") or 0) if latest else None


def _canary_ready(document: Document, mode: ServingMode) -> bool:
    if mode is ServingMode.STANDARD:
        entries = status(document).get("canaryStatuses") or []
        return bool(entries) and all(bool(entry.get("ready")) for entry in entries)
    predictor = (status(document).get("components") or {}).get("predictor") or {}
    latest = predictor.get("latestCreatedRevision")
    return latest is not None and latest == predictor.get("latestReadyRevision")
