"""What ``plan-fleet`` reads: the fleet (models to place) and the inventory (the cluster's GPU nodes and quotas)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gpu_planning.catalog import gpu_product, validate_mig_layout

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Positive = Annotated[int, Field(strict=True, ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(_Strict):
    """A pod toleration, as in Kubernetes."""

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Taint(_Strict):
    """A node taint, as in Kubernetes."""

    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

    def tolerated_by(self, tolerations: list[Toleration]) -> bool:
        """Whether one of ``tolerations`` lets a pod onto a node with this taint."""
        if self.effect == "PreferNoSchedule":
            return True
        return any(
            t.key == self.key
            and (t.effect is None or t.effect == self.effect)
            and (t.operator == "Exists" or t.value == self.value)
            for t in tolerations
        )


class FleetModel(_Strict):
    """One model of the fleet: its GPU memory need (from ``aiserving size``) and how it may be placed."""

    name: str = Field(pattern=DNS_LABEL, max_length=45, description="the InferenceService name")
    namespace: str = Field(default="ml-serving", pattern=DNS_LABEL)
    model_uri: str = Field(default="", description="models:/ URI for deploy-fleet")
    runtime: str = Field(default="python", description="triton, torchserve, tfserving or python")
    image: str = Field(default="", description="image reference deploy-fleet pushes the package to")
    memory_mib: Positive = Field(description="GPU memory one replica needs, headroom included (`aiserving size`)")
    replicas: Positive = 1
    latency_class: Literal["realtime", "standard", "batch"] = Field(
        default="standard", description="realtime never gets a time-sliced share: CUDA slices time equally"
    )
    may_share: bool = Field(default=True, description="false: whole GPUs only")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    canary_percent: int = Field(default=10, ge=0, le=100, strict=True)


class Fleet(_Strict):
    """The models to place."""

    models: list[FleetModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Fleet:
        names = [(model.namespace, model.name) for model in self.models]
        duplicates = sorted({f"{ns}/{name}" for ns, name in names if names.count((ns, name)) > 1})
        if duplicates:
            raise ValueError(f"model names repeat within a namespace: {', '.join(duplicates)}; give each its own")
        return self


class Node(_Strict):
    """One GPU node of the cluster."""

    name: str
    gpu: str = Field(description="catalog name (e.g. A100-80GB) or GFD product label")
    gpus: Positive = Field(description="GPUs on the node")
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    mig_layout: list[str] | None = Field(
        default=None, description="a MIG layout every GPU of the node keeps (e.g. [3g.40gb, 3g.40gb]); omitted: planned"
    )
    allow_mig: bool = True
    allow_time_slicing: bool = True

    @model_validator(mode="after")
    def _known_gpu_and_layout(self) -> Node:
        product = gpu_product(self.gpu)
        if self.mig_layout is not None:
            validate_mig_layout(product, self.mig_layout)
        return self


QUOTA_KEY = r"^requests\.nvidia\.com/(gpu|gpu\.shared|mig-[0-9]+g\.[0-9]+gb)$"


class Inventory(_Strict):
    """The cluster: its GPU nodes and the GPU quota of each namespace (ResourceQuota ``hard`` keys)."""

    nodes: list[Node] = Field(min_length=1)
    quotas: dict[str, dict[Annotated[str, Field(pattern=QUOTA_KEY)], Annotated[int, Field(ge=0)]]] = Field(
        default_factory=dict, description="namespace → {requests.nvidia.com/gpu: 4, ...}; absent: no limit"
    )

    @model_validator(mode="after")
    def _unique_nodes(self) -> Inventory:
        names = [node.name for node in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        return self
