"""Kubernetes objects as the API server sends them, and typed views of the InferenceService fields we read.

``Document`` is the wire form: the JSON object we build, copy, patch and send. The ``TypedDict`` views
name only the fields this project reads (``total=False``: the API server omits what is unset), and the
accessors return them with ``{}`` / ``[]`` for a missing or null part, so callers need no ``.get`` chains.
They are for reading: a view shares the document's dicts, but a missing part comes back as a new empty one.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

Document = dict[str, Any]


class ObjectMeta(TypedDict, total=False):
    """``metadata``."""

    name: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    labels: dict[str, str]
    annotations: dict[str, str]


class PredictorSpec(TypedDict, total=False):
    """``spec.predictor`` (and ``spec.canary[].predictor``)."""

    name: str
    minReplicas: int
    canaryTrafficPercent: int | None


class CanaryEntry(TypedDict, total=False):
    """One ``spec.canary[]`` entry (Standard mode, KServe >= 0.20)."""

    trafficPercent: int
    predictor: PredictorSpec


class InferenceServiceSpec(TypedDict, total=False):
    """``spec``."""

    predictor: PredictorSpec
    canary: list[CanaryEntry]


class Condition(TypedDict, total=False):
    """One ``status.conditions[]`` entry."""

    type: str
    status: str
    reason: str
    message: str


class TrafficTarget(TypedDict, total=False):
    """One Knative ``status.components.predictor.traffic[]`` entry."""

    revisionName: str
    percent: int
    latestRevision: bool
    tag: str


class PredictorStatus(TypedDict, total=False):
    """``status.components.predictor`` (Knative revisions)."""

    latestCreatedRevision: str
    latestReadyRevision: str
    latestRolledoutRevision: str
    traffic: list[TrafficTarget]


class ComponentStatuses(TypedDict, total=False):
    """``status.components``."""

    predictor: PredictorStatus


class CanaryStatus(TypedDict, total=False):
    """One ``status.canaryStatuses[]`` entry (Standard mode)."""

    name: str
    trafficPercent: int
    ready: bool


class InferenceServiceStatus(TypedDict, total=False):
    """``status``."""

    url: str
    deploymentMode: str
    observedGeneration: int
    conditions: list[Condition]
    components: ComponentStatuses
    canaryStatuses: list[CanaryStatus]


class InferenceService(TypedDict, total=False):
    """A whole InferenceService."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: InferenceServiceSpec
    status: InferenceServiceStatus


def inference_service(document: Document) -> InferenceService:
    """``document`` read as an InferenceService (no check: the API server or the builder made it)."""
    return cast(InferenceService, document)


def metadata(document: Document) -> ObjectMeta:
    """``metadata``, or ``{}``."""
    return inference_service(document).get("metadata") or {}


def labels_of(document: Document) -> dict[str, str]:
    """``metadata.labels``, or ``{}``."""
    return metadata(document).get("labels") or {}


def annotations_of(document: Document) -> dict[str, str]:
    """``metadata.annotations``, or ``{}``."""
    return metadata(document).get("annotations") or {}


def spec(document: Document) -> InferenceServiceSpec:
    """``spec``, or ``{}``."""
    return inference_service(document).get("spec") or {}


def predictor_spec(document: Document) -> PredictorSpec:
    """``spec.predictor``, or ``{}``."""
    return spec(document).get("predictor") or {}


def status(document: Document) -> InferenceServiceStatus:
    """``status``, or ``{}`` before the controller has reported."""
    return inference_service(document).get("status") or {}


def conditions(document: Document) -> list[Condition]:
    """``status.conditions``, or ``[]``."""
    return status(document).get("conditions") or []


def predictor_status(document: Document) -> PredictorStatus:
    """``status.components.predictor``, or ``{}``."""
    return (status(document).get("components") or {}).get("predictor") or {}
