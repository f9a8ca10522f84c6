"""Small helpers over rendered Kubernetes objects (plain dicts)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Obj = dict[str, Any]

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_OPERATOR_NAMESPACE = "gpu-operator"
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def is_gpu_resource(name: str) -> bool:
    """Whole GPUs, time-sliced shares and MIG slices (any strategy) all count as GPUs."""
    return name in ("nvidia.com/gpu", "nvidia.com/gpu.shared") or name.startswith("nvidia.com/mig-")


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj.get("kind") == kind]


def ref(obj: Obj) -> str:
    """``Kind namespace/name`` for messages."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    return f"{obj.get('kind')} {namespace + '/' if namespace else ''}{meta.get('name')}"


def name_of(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def namespace_of(obj: Obj) -> str | None:
    namespace = obj.get("metadata", {}).get("namespace")
    return None if namespace is None else str(namespace)


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def labels_of(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def predictor_containers(isvc: Obj) -> Iterator[tuple[str, Obj]]:
    """The predictor's containers with a path for messages: ``model`` and ``containers[]``."""
    predictor = isvc.get("spec", {}).get("predictor", {})
    if "model" in predictor:
        yield "spec.predictor.model", predictor["model"]
    for index, container in enumerate(predictor.get("containers") or []):
        yield f"spec.predictor.containers[{index}]", container


def runtime_containers(runtime: Obj) -> Iterator[tuple[str, Obj]]:
    for index, container in enumerate(runtime.get("spec", {}).get("containers") or []):
        yield f"spec.containers[{index}]", container


def gpu_limits(isvc: Obj) -> dict[str, Any]:
    """GPU resources in the predictor's limits, by resource name."""
    found: dict[str, Any] = {}
    for _, container in predictor_containers(isvc):
        limits = (container.get("resources") or {}).get("limits") or {}
        found.update({name: value for name, value in limits.items() if is_gpu_resource(name)})
    return found


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
