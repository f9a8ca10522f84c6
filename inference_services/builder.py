"""Build the typed KServe ``V1beta1InferenceService`` for a deployment config."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from kserve.models import (
    V1beta1AutoScalingSpec,
    V1beta1ExternalMetrics,
    V1beta1ExternalMetricSource,
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1MetricsSpec,
    V1beta1MetricTarget,
    V1beta1ModelFormat,
    V1beta1ModelSpec,
    V1beta1PredictorSpec,
)
from kubernetes import client

from inference_services.config import DeploymentConfig, GpuConfig, GpuSharing
from inference_services.traffic import MODE_ANNOTATION, DeploymentMode
from serving_core import isvc_lineage
from serving_core.kube_objects import Document, ObjectMeta

API_VERSION = "serving.kserve.io/v1beta1"
AUTOSCALER_ANNOTATION = "serving.kserve.io/autoscalerClass"
# Fields a Standard-mode canary may not set (KServe's spec.canary validation).
CANARY_FORBIDDEN = ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling", "workerSpec", "canaryTrafficPercent")


def _resources(config: DeploymentConfig) -> client.V1ResourceRequirements | None:
    requests = {key: value for key, value in (("cpu", config.cpu), ("memory", config.memory)) if value}
    limits: dict[str, Any] = dict(requests)
    if config.gpu is not None:
        # GPUs go in limits only; requests default to limits and must not differ.
        limits[config.gpu.resource_name] = config.gpu.count
    if not limits:
        return None
    return client.V1ResourceRequirements(requests=requests or None, limits=limits)


def _gpu_affinity(gpu: GpuConfig) -> client.V1Affinity | None:
    expressions = []
    products = gpu.products
    if gpu.sharing is GpuSharing.MIG and gpu.mig_strategy == "single":
        # With the single strategy GFD rewrites the product label to <product>-MIG-<profile>.
        products = [f"{product}-MIG-{gpu.mig_profile}" for product in products]
        expressions.append(client.V1NodeSelectorRequirement(key="nvidia.com/mig.strategy", operator="In",
                                                            values=["single"]))  # fmt: skip
    if gpu.sharing is GpuSharing.TIME_SLICED:
        expressions.append(client.V1NodeSelectorRequirement(key="nvidia.com/gpu.sharing-strategy", operator="In",
                                                            values=["time-slicing"]))  # fmt: skip
    if products:
        expressions.append(client.V1NodeSelectorRequirement(key="nvidia.com/gpu.product", operator="In",
                                                            values=list(products)))  # fmt: skip
    if gpu.min_memory_mib is not None:
        # Gt is strict, so "at least N MiB" is "greater than N-1".
        expressions.append(client.V1NodeSelectorRequirement(key="nvidia.com/gpu.memory", operator="Gt",
                                                            values=[str(gpu.min_memory_mib - 1)]))  # fmt: skip
    if not expressions:
        return None
    term = client.V1NodeSelectorTerm(match_expressions=expressions)
    return client.V1Affinity(
        node_affinity=client.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=client.V1NodeSelector(node_selector_terms=[term])
        )
    )


def _autoscaling(config: DeploymentConfig) -> V1beta1AutoScalingSpec | None:
    metrics = config.autoscaling.keda_metrics
    if not metrics:
        return None
    return V1beta1AutoScalingSpec(
        metrics=[
            V1beta1MetricsSpec(
                type="External",
                external=V1beta1ExternalMetricSource(
                    metric=V1beta1ExternalMetrics(
                        backend=metric.backend,
                        server_address=metric.server_address,
                        query=metric.query,
                        namespace=metric.namespace,
                    ),
                    target=V1beta1MetricTarget(type="Value", value=metric.target_value),
                ),
            )
            for metric in metrics
        ]
    )


def build_predictor(config: DeploymentConfig) -> V1beta1PredictorSpec:
    """The predictor: model (or container), resources, GPU placement, scaling, canary percent."""
    resources = _resources(config)
    model = containers = None
    if config.storage_uri is not None:
        model = V1beta1ModelSpec(
            name=None,  # the SDK defaults it to "", which is not a container name
            model_format=V1beta1ModelFormat(name=config.model_format, version=config.model_format_version),
            runtime=config.runtime,
            storage_uri=config.storage_uri,
            protocol_version=config.protocol_version,
            runtime_version=config.runtime_version,
            # KServe appends these to the runtime container's args.
            args=config.batching.server_args() if config.batching is not None else None,
            resources=resources,
        )
    else:
        containers = [client.V1Container(name="kserve-container", image=config.image, resources=resources)]
    scaling = config.autoscaling
    tolerations = [client.V1Toleration(**item.model_dump(exclude_none=True)) for item in config.effective_tolerations]
    knative = config.mode is DeploymentMode.KNATIVE
    return V1beta1PredictorSpec(
        model=model,
        containers=containers,
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        scale_metric=scaling.scale_metric,
        scale_target=scaling.scale_target,
        auto_scaling=_autoscaling(config),
        tolerations=tolerations or None,
        affinity=_gpu_affinity(config.gpu) if config.gpu is not None else None,
        runtime_class_name=config.runtime_class_name,
        priority_class_name=config.priority_class_name,
        service_account_name=config.service_account_name,
        # Knative only: Standard mode silently ignores this field, it uses spec.canary instead.
        canary_traffic_percent=config.canary_percent if knative else None,
    )


def _metadata(config: DeploymentConfig, namespace: str) -> client.V1ObjectMeta:
    labels = {"app.kubernetes.io/managed-by": "aiserving"}
    annotations = {MODE_ANNOTATION: config.mode.annotation_value}
    if config.mode is DeploymentMode.STANDARD and config.autoscaling.autoscaler_class is not None:
        annotations[AUTOSCALER_ANNOTATION] = config.autoscaling.autoscaler_class
    metadata = ObjectMeta(labels=labels, annotations=annotations)
    if (lineage := config.lineage) is not None:
        stamped = isvc_lineage.IsvcLineage(
            model_name=lineage.model_name, model_version=lineage.model_version, run_id=lineage.run_id,
            digest=lineage.digest, pipeline_run=lineage.pipeline_run,
        )  # fmt: skip
        isvc_lineage.stamp(metadata, stamped)
    return client.V1ObjectMeta(
        name=config.name, namespace=namespace, labels=metadata["labels"], annotations=metadata["annotations"]
    )


def build_inference_service(config: DeploymentConfig, namespace: str) -> V1beta1InferenceService:
    """The whole InferenceService for a first deploy (or a full rollout) of ``config``."""
    return V1beta1InferenceService(
        api_version=API_VERSION,
        kind="InferenceService",
        metadata=_metadata(config, namespace),
        spec=V1beta1InferenceServiceSpec(predictor=build_predictor(config)),
    )


def to_document(model: Any) -> Document:
    """A typed Kubernetes/KServe model as the JSON-ready dict the API server receives."""
    document: Document = client.ApiClient().sanitize_for_serialization(model)
    return document


def canary_name(predictor: Document) -> str:
    """A stable, content-derived name for a Standard-mode canary predictor (a DNS label)."""
    digest = hashlib.sha256(json.dumps(predictor, sort_keys=True).encode()).hexdigest()
    return f"canary-{digest[:8]}"


def with_standard_canary(live: Document, new_predictor: Document, percent: int) -> Document:
    """``live`` with its stable predictor kept and ``new_predictor`` added as ``spec.canary[0]``."""
    document = copy.deepcopy(live)
    stable = document["spec"]["predictor"]
    canary = {key: value for key, value in new_predictor.items() if key not in CANARY_FORBIDDEN}
    if canary.get("minReplicas") is not None:
        canary["minReplicas"] = min(int(canary["minReplicas"]), int(stable.get("minReplicas", 1)))
    canary.pop("name", None)
    if "model" in canary:
        # The CRD requires a container name inside spec.canary[].predictor.model (not in the stable one).
        canary["model"] = {**canary["model"], "name": canary["model"].get("name") or "kserve-container"}
    canary["name"] = canary_name(canary)
    if canary["name"] == stable.get("name"):
        canary["name"] = canary_name({**canary, "stable": stable.get("name")})
    document["spec"]["canary"] = [{"trafficPercent": percent, "predictor": canary}]
    return document
