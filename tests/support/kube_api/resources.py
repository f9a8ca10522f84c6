"""The resource kinds the test API server serves and how their URLs look."""

from __future__ import annotations

from dataclasses import dataclass

# kube-apiserver accepts these field labels on every kind; custom resources accept nothing else.
METADATA_FIELD_LABELS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class ResourceType:
    """One resource kind: URL parts and bookkeeping rules.

    ``custom`` marks a CustomResourceDefinition's kind: its unknown fields are pruned against the CRD
    schema and its field selectors are limited to ``metadata.*``. ``field_labels`` are the extra field
    selector labels a built-in kind registers (``pods``: ``status.phase``, …).
    """

    group: str
    version: str
    plural: str
    kind: str
    tracks_generation: bool = False
    has_status: bool = False
    namespaced: bool = True
    custom: bool = False
    field_labels: frozenset[str] = frozenset()
    known_fields: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``plural.group`` as kube-apiserver names the resource in messages (``pods`` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def selectable_fields(self) -> frozenset[str]:
        return METADATA_FIELD_LABELS | self.field_labels


INFERENCE_SERVICES = ResourceType(
    "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", tracks_generation=True, has_status=True,
    custom=True,
)  # fmt: skip
REVISIONS = ResourceType(
    "serving.knative.dev", "v1", "revisions", "Revision", tracks_generation=True, has_status=True, custom=True
)
PODS = ResourceType(
    "", "v1", "pods", "Pod", has_status=True,
    field_labels=frozenset({
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
        "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName",
    }),
)  # fmt: skip
EVENTS = ResourceType(
    "", "v1", "events", "Event",
    field_labels=frozenset({
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
        "reportingComponent", "source", "type",
    }),
)  # fmt: skip
CONFIG_MAPS = ResourceType(
    "", "v1", "configmaps", "ConfigMap",
    known_fields=frozenset({"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}),
)  # fmt: skip
NAMESPACES = ResourceType(
    "", "v1", "namespaces", "Namespace", has_status=True, namespaced=False,
    field_labels=frozenset({"status.phase"}),
    known_fields=frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
)  # fmt: skip
RESOURCE_QUOTAS = ResourceType(
    "", "v1", "resourcequotas", "ResourceQuota", has_status=True,
    known_fields=frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
)  # fmt: skip
LIMIT_RANGES = ResourceType(
    "", "v1", "limitranges", "LimitRange", known_fields=frozenset({"apiVersion", "kind", "metadata", "spec"})
)
REPLICA_SETS = ResourceType(
    "apps", "v1", "replicasets", "ReplicaSet", tracks_generation=True, has_status=True,
    field_labels=frozenset({"status.replicas"}),
)  # fmt: skip

ALL_TYPES = (
    INFERENCE_SERVICES, REVISIONS, PODS, EVENTS, CONFIG_MAPS, NAMESPACES, RESOURCE_QUOTAS, LIMIT_RANGES, REPLICA_SETS,
)  # fmt: skip
BY_PATH = {(kind.group, kind.version, kind.plural): kind for kind in ALL_TYPES}
