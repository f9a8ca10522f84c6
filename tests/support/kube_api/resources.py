"""The resource kinds the test API server serves and how their URLs look."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    """One namespaced resource kind: URL parts and bookkeeping rules."""

    group: str
    version: str
    plural: str
    kind: str
    tracks_generation: bool = False
    has_status: bool = False

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


INFERENCE_SERVICES = ResourceType(
    "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", tracks_generation=True, has_status=True
)
PODS = ResourceType("", "v1", "pods", "Pod", has_status=True)
EVENTS = ResourceType("", "v1", "events", "Event")
CONFIG_MAPS = ResourceType("", "v1", "configmaps", "ConfigMap")

ALL_TYPES = (INFERENCE_SERVICES, PODS, EVENTS, CONFIG_MAPS)
BY_PATH = {(kind.group, kind.version, kind.plural): kind for kind in ALL_TYPES}
