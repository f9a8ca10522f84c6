"""Bad deployment configs fail at parse time, naming the field and the value."""

from __future__ import annotations

from typing import Any

import pytest

from inference_services.canary import check_percent
from inference_services.config import DeploymentConfig, GpuSharing, parse_config
from serving_core.errors import InvalidInputError

BASE: dict[str, Any] = {"name": "fraud", "model_format": "onnx", "storage_uri": "s3://models/fraud/1"}


def config(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (config(name="Fraud_Detector"), "name: String should match pattern"),
        (config(name="9lives"), "name: String should match pattern"),
        (config(name="m" * 48), "name: String should have at most 47 characters"),
        (config(gpu={"count": -1}), "gpu.count: Input should be greater than or equal to 1"),
        (config(gpu={"count": 0}), "gpu.count: Input should be greater than or equal to 1"),
        (config(gpu={"count": 1.5}), "gpu.count: Input should be a valid integer (got 1.5)"),
        (config(gpu={"count": "2"}), "gpu.count: Input should be a valid integer"),
        (config(gpu={"sharing": "mig", "mig_profile": "1g.10gb", "mig_strategy": "none"}), "mig_strategy none exposes"),
        (config(gpu={"sharing": "mig", "mig_profile": "1g.10gb"}), "sharing: mig needs mig_profile"),
        (
            config(gpu={"sharing": "mig", "mig_profile": "1g.10gb.me", "mig_strategy": "single"}),
            "needs mig_strategy mixed",
        ),
        (config(gpu={"sharing": "whole", "mig_strategy": "mixed"}), "apply only to sharing: mig, not whole"),
        (
            config(gpu={"sharing": "mig", "mig_profile": "10gb", "mig_strategy": "mixed"}),
            "gpu.mig_profile: String should match",
        ),
        (config(gpu={"sharing": "time-sliced", "count": 2}), "time-sliced count 2"),
        (config(canary_percent=101), "canary_percent 101 is outside 0-100"),
        (config(canary_percent=-5), "canary_percent -5 is outside 0-100"),
        (config(autoscaling={"autoscaler_class": "hpa"}), "autoscaler_class hpa applies to Standard mode"),
        (config(autoscaling={"scale_metric": "cpu"}), "scale_metric cpu needs Standard mode"),
        (
            config(mode="standard", autoscaling={"scale_metric": "concurrency"}),
            "scale_metric concurrency is Knative-only",
        ),
        (config(mode="standard", autoscaling={"min_replicas": 0}), "min_replicas 0 needs Knative mode"),
        (
            config(mode="standard", autoscaling={"autoscaler_class": "keda"}),
            "keda needs keda_metrics or a scale_metric",
        ),
        (config(mode="standard", autoscaling={"autoscaler_class": "none", "scale_target": 5}), "autoscaler_class none"),
        (
            config(
                mode="standard",
                autoscaling={"keda_metrics": [{"server_address": "http://p:9090", "query": "q", "target_value": "2"}]},
            ),
            "keda_metrics need autoscaler_class: keda",
        ),
        (config(autoscaling={"min_replicas": 3, "max_replicas": 2}), "min_replicas 3 > max_replicas 2"),
        (config(storage_uri="oci://registry/model:latest"), "storage_uri: String should match pattern"),
        (config(image="registry/predictor@sha256:" + "a" * 64), "exactly one of storage_uri"),
        ({"name": "fraud", "storage_uri": "s3://m/1"}, "storage_uri needs model_format"),
        (config(gpus=1), "gpus: Extra inputs are not permitted"),
    ],
)
def test_bad_configs_are_refused(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_config(document, "test.yaml")
    assert caught.value.message.startswith("test.yaml is not a valid deployment config: ")
    assert expected in caught.value.message


def test_a_full_config_parses() -> None:
    parsed = parse_config(
        config(
            gpu={"count": 2, "sharing": "mig", "mig_profile": "1g.10gb", "mig_strategy": "mixed"},
            mode="standard",
            autoscaling={"min_replicas": 1, "max_replicas": 0, "scale_metric": "cpu", "scale_target": 70},
            canary_percent=0,
        )
    )
    assert isinstance(parsed, DeploymentConfig)
    assert parsed.gpu is not None
    assert parsed.gpu.sharing is GpuSharing.MIG
    assert parsed.gpu.resource_name == "nvidia.com/mig-1g.10gb"


@pytest.mark.parametrize("percent", [-1, 101])
def test_canary_percent_outside_range_is_refused(percent: int) -> None:
    with pytest.raises(InvalidInputError, match=f"canary percent {percent} is outside 0-100"):
        check_percent(percent)
