"""The builder's typed InferenceService, asserted as whole objects."""

from __future__ import annotations

from typing import Any

from inference_services.builder import build_inference_service, to_document, with_standard_canary
from inference_services.config import parse_config

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def rendered(**document: Any) -> dict[str, Any]:
    base = {"name": "fraud", "model_format": "triton", "storage_uri": "s3://models/fraud/7"}
    return to_document(build_inference_service(parse_config({**base, **document}), "ml"))


def test_whole_gpu_knative_canary_with_lineage() -> None:
    document = rendered(
        protocol_version="v2",
        cpu="4",
        memory="16Gi",
        gpu={"count": 2, "products": ["NVIDIA-H100-80GB-HBM3"], "min_memory_mib": 80000},
        runtime_class_name="nvidia",
        priority_class_name="inference-high",
        service_account_name="puller",
        autoscaling={"min_replicas": 1, "max_replicas": 4, "scale_metric": "concurrency", "scale_target": 8},
        canary_percent=10,
        lineage={"model_name": "fraud", "model_version": "7", "run_id": "abc", "digest": "sha256:" + "0" * 64},
    )
    assert document == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "fraud",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/managed-by": "aiserving",
                "aiserving.creativeflow.ai/model-name": "fraud",
                "aiserving.creativeflow.ai/model-version": "7",
            },
            "annotations": {
                "serving.kserve.io/deploymentMode": "Serverless",
                "aiserving.creativeflow.ai/run-id": "abc",
                "aiserving.creativeflow.ai/model-digest": "sha256:" + "0" * 64,
            },
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "triton"},
                    "storageUri": "s3://models/fraud/7",
                    "protocolVersion": "v2",
                    "resources": {
                        "requests": {"cpu": "4", "memory": "16Gi"},
                        "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 2},
                    },
                },
                "minReplicas": 1,
                "maxReplicas": 4,
                "scaleMetric": "concurrency",
                "scaleTarget": 8,
                "canaryTrafficPercent": 10,
                "tolerations": [GPU_TOLERATION],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "nvidia.com/gpu.product", "operator": "In",
                                         "values": ["NVIDIA-H100-80GB-HBM3"]},
                                        {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["79999"]},
                                    ]
                                }
                            ]
                        }
                    }
                },
                "runtimeClassName": "nvidia",
                "priorityClassName": "inference-high",
                "serviceAccountName": "puller",
            }
        },
    }  # fmt: skip


def test_mig_single_rewrites_products_and_uses_plain_gpu() -> None:
    predictor = rendered(
        gpu={"sharing": "mig", "mig_profile": "1g.10gb", "mig_strategy": "single", "products": ["A100-SXM4-80GB"]}
    )["spec"]["predictor"]
    assert predictor["model"]["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    terms = predictor["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "nvidia.com/mig.strategy", "operator": "In", "values": ["single"]},
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A100-SXM4-80GB-MIG-1g.10gb"]},
    ]


def test_mig_mixed_and_time_sliced_resource_names() -> None:
    mig = rendered(gpu={"sharing": "mig", "mig_profile": "3g.40gb", "mig_strategy": "mixed", "count": 2})
    shared = rendered(gpu={"sharing": "time-sliced"})
    assert mig["spec"]["predictor"]["model"]["resources"] == {"limits": {"nvidia.com/mig-3g.40gb": 2}}
    assert "affinity" not in mig["spec"]["predictor"]
    assert shared["spec"]["predictor"]["model"]["resources"] == {"limits": {"nvidia.com/gpu.shared": 1}}
    expressions = shared["spec"]["predictor"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]  # fmt: skip
    assert expressions == [{"key": "nvidia.com/gpu.sharing-strategy", "operator": "In", "values": ["time-slicing"]}]


def test_cpu_only_standard_with_keda() -> None:
    document = rendered(
        cpu="1",
        mode="standard",
        canary_percent=20,
        autoscaling={
            "min_replicas": 1,
            "autoscaler_class": "keda",
            "keda_metrics": [{"server_address": "http://prometheus:9090", "query": "sum(rate(x[1m]))",
                              "target_value": "5"}],
        },
    )  # fmt: skip
    assert document["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "serving.kserve.io/autoscalerClass": "keda",
    }
    assert document["spec"]["predictor"] == {
        "model": {
            "modelFormat": {"name": "triton"},
            "storageUri": "s3://models/fraud/7",
            "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}},
        },
        "minReplicas": 1,
        "autoScaling": {
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"backend": "prometheus", "serverAddress": "http://prometheus:9090",
                                   "query": "sum(rate(x[1m]))"},
                        "target": {"type": "Value", "value": "5"},
                    },
                }
            ]
        },
    }  # fmt: skip


def test_standard_canary_keeps_the_stable_predictor() -> None:
    stable = rendered(mode="standard", autoscaling={"min_replicas": 2, "max_replicas": 4, "scale_metric": "cpu"})
    new = rendered(storage_uri="s3://models/fraud/8", mode="standard",
                   autoscaling={"min_replicas": 3, "max_replicas": 6, "scale_metric": "cpu"})  # fmt: skip

    document = with_standard_canary(stable, new["spec"]["predictor"], 25)

    assert document["spec"]["predictor"] == stable["spec"]["predictor"]
    [entry] = document["spec"]["canary"]
    assert entry["trafficPercent"] == 25
    canary = entry["predictor"]
    assert canary["name"].startswith("canary-")
    assert canary["minReplicas"] == 2  # never more than the stable predictor's
    assert "maxReplicas" not in canary
    assert "scaleMetric" not in canary
    assert canary["model"]["storageUri"] == "s3://models/fraud/8"
    assert canary["model"]["name"] == "kserve-container"
