"""GPU requests, quota and scheduling: the mistakes the cluster accepts silently."""

from __future__ import annotations

from typing import Any

from tests.support.manifests.objects import (
    GPU_TAINT_KEY,
    Obj,
    gpu_limits,
    is_gpu_resource,
    namespace_of,
    of_kind,
    predictor_containers,
    ref,
    runtime_containers,
)

# Node labels from GPU Feature Discovery / the GPU Operator that identify GPU nodes.
_GPU_NODE_LABEL_PREFIXES = ("nvidia.com/gpu.", "nvidia.com/mig.", "nvidia.com/mig-")


def _is_positive_integer(value: Any) -> bool:
    text = str(value)
    return text.isdigit() and int(text) > 0


def check_gpu_only_in_limits(objects: list[Obj]) -> list[str]:
    """GPUs go in limits as positive integers; never in requests; never on a ServingRuntime.

    Requests default to limits, and KServe and dcgm-exporter recognise GPU pods by their limits. A
    runtime-level GPU would be merged with the InferenceService's sharing choice.
    """
    problems = []
    for isvc in of_kind(objects, "InferenceService"):
        for path, container in predictor_containers(isvc):
            resources = container.get("resources") or {}
            for name in resources.get("requests") or {}:
                if is_gpu_resource(name):
                    problems.append(f"{ref(isvc)}: {path}.resources.requests has {name}; set GPUs in limits only")
            for name, value in (resources.get("limits") or {}).items():
                if is_gpu_resource(name) and not _is_positive_integer(value):
                    problems.append(
                        f"{ref(isvc)}: {path}.resources.limits[{name}] is {value!r}; use a whole number >= 1"
                    )
    for runtime in of_kind(objects, "ServingRuntime"):
        for path, container in runtime_containers(runtime):
            for section in ("requests", "limits"):
                for name in (container.get("resources") or {}).get(section) or {}:
                    if is_gpu_resource(name):
                        problems.append(
                            f"{ref(runtime)}: {path}.resources.{section} has {name}; GPUs belong on the "
                            "InferenceService (a GPU-sharing component), not the runtime"
                        )
    return problems


def check_quota(objects: list[Obj]) -> list[str]:
    """Extended resources only with ``requests.``; every GPU name in use has a quota; cpu/memory
    quotas come with a LimitRange that gives injected containers defaults."""
    problems = []
    quota_keys: dict[str | None, set[str]] = {}
    limits_cpu_or_memory: set[str | None] = set()
    for quota in of_kind(objects, "ResourceQuota"):
        namespace = namespace_of(quota)
        for key in quota.get("spec", {}).get("hard") or {}:
            quota_keys.setdefault(namespace, set()).add(key)
            resource = key.split(".", 1)[1] if key.startswith(("requests.", "limits.")) else key
            if "/" in resource and not key.startswith("requests."):
                problems.append(
                    f"{ref(quota)}: quota key {key!r} is not enforced for extended resources; use 'requests.{resource}'"
                )
            if resource in ("cpu", "memory"):
                limits_cpu_or_memory.add(namespace)
    for isvc in of_kind(objects, "InferenceService"):
        namespace = namespace_of(isvc)
        for name in gpu_limits(isvc):
            if f"requests.{name}" not in quota_keys.get(namespace, set()):
                problems.append(f"{ref(isvc)}: uses {name} but no ResourceQuota in {namespace} has 'requests.{name}'")
    for namespace in limits_cpu_or_memory:
        if not any(
            _has_container_defaults(lr) for lr in of_kind(objects, "LimitRange") if namespace_of(lr) == namespace
        ):
            problems.append(
                f"namespace {namespace}: a cpu/memory quota needs a LimitRange with Container default and "
                "defaultRequest, or KServe's injected containers are rejected"
            )
    return problems


def _has_container_defaults(limit_range: Obj) -> bool:
    return any(
        item.get("type") == "Container" and item.get("default") and item.get("defaultRequest")
        for item in limit_range.get("spec", {}).get("limits") or []
    )


def check_gpu_scheduling(objects: list[Obj]) -> list[str]:
    """GPU predictors tolerate the GPU taint and select GPU nodes that fit their sharing mode."""
    problems = []
    for isvc in of_kind(objects, "InferenceService"):
        gpus = gpu_limits(isvc)
        if not gpus:
            continue
        predictor = isvc["spec"]["predictor"]
        if not any(_tolerates_gpu_taint(toleration) for toleration in predictor.get("tolerations") or []):
            problems.append(
                f"{ref(isvc)}: GPU predictor does not tolerate {GPU_TAINT_KEY}:NoSchedule "
                "(add {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule})"
            )
        terms = _required_node_terms(predictor)
        if not terms or not all(any(key.startswith(_GPU_NODE_LABEL_PREFIXES) for key in term) for term in terms):
            problems.append(
                f"{ref(isvc)}: GPU predictor does not select GPU nodes; require a GPU node label "
                "(nvidia.com/gpu.memory, nvidia.com/gpu.sharing-strategy, nvidia.com/mig.strategy, ...)"
            )
            continue
        for name in gpus:
            problems.extend(f"{ref(isvc)}: {problem}" for problem in _sharing_mismatch(name, terms))
    return problems


def _tolerates_gpu_taint(toleration: dict[str, Any]) -> bool:
    if toleration.get("effect") not in (None, "", "NoSchedule"):
        return False
    if toleration.get("operator") == "Exists" and toleration.get("key") in (None, ""):
        return True
    return toleration.get("key") == GPU_TAINT_KEY


def _required_node_terms(predictor: dict[str, Any]) -> list[dict[str, dict[str, Any]]]:
    """Each required node-selector term as {label key: expression}; nodeSelector joins every term."""
    node_selector = {
        key: {"key": key, "operator": "In", "values": [value]}
        for key, value in (predictor.get("nodeSelector") or {}).items()
    }
    required = ((predictor.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = [
        {**node_selector, **{expr["key"]: expr for expr in term.get("matchExpressions") or []}}
        for term in required.get("nodeSelectorTerms") or []
    ]
    if not terms and node_selector:
        terms = [node_selector]
    return terms


def _sharing_mismatch(resource: str, terms: list[dict[str, dict[str, Any]]]) -> list[str]:
    """The node labels each GPU-sharing mode must select, so pods never wait for absent resources."""
    problems = []
    for term in terms:
        strategy = term.get("nvidia.com/gpu.sharing-strategy", {})
        products = [str(value) for value in (term.get("nvidia.com/gpu.product", {}).get("values") or [])]
        if resource == "nvidia.com/gpu.shared" and not (
            strategy.get("operator") == "In" and "time-slicing" in (strategy.get("values") or [])
        ):
            problems.append("nvidia.com/gpu.shared needs nodes with nvidia.com/gpu.sharing-strategy In [time-slicing]")
        if resource.startswith("nvidia.com/mig-") and not (
            "nvidia.com/mig.strategy" in term or f"{resource}.count" in term
        ):
            problems.append(f"{resource} needs nodes selected by nvidia.com/mig.strategy or {resource}.count")
        if resource == "nvidia.com/gpu" and any(p.endswith("-SHARED") or "-MIG-" in p for p in products):
            problems.append(
                "whole-GPU predictor selects a -SHARED or -MIG- product name, which exists only on shared nodes"
            )
    return problems
