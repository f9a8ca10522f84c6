"""Rendered InferenceServices validate against KServe's CRD; too-new features are refused per target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inference_services.builder import with_standard_canary
from inference_services.config import config_json_schema, load_config, parse_config
from inference_services.crd_validation import available_crd_versions, crd_version_for, schema_errors
from inference_services.deploy import render
from inference_services.versions import KServeVersion
from serving_core.errors import InvalidInputError, UnsupportedError
from tests.conftest import REPO_ROOT
from tests.support.tools import skip_or_fail

EXAMPLES = sorted((REPO_ROOT / "examples" / "deployments").glob("*.yaml"))
V0_20 = KServeVersion(0, 20)
GPU_CHOICES = {
    "whole": {"count": 2, "products": ["NVIDIA-A100-SXM4-80GB"], "min_memory_mib": 40000},
    "mig-single": {
        "sharing": "mig",
        "mig_profile": "1g.10gb",
        "mig_strategy": "single",
        "products": ["A100-SXM4-80GB"],
    },
    "mig-mixed": {"sharing": "mig", "mig_profile": "2g.20gb", "mig_strategy": "mixed"},
    "time-sliced": {"sharing": "time-sliced"},
}


@pytest.fixture(scope="module", autouse=True)
def _crds_present() -> None:
    if V0_20 not in available_crd_versions():
        skip_or_fail("the KServe v0.20.0 CRD is missing: set KSERVE_CRD_DIR")


def gpu_config(choice: str, mode: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "model",
        "model_format": "triton",
        "storage_uri": "s3://models/model/1",
        "gpu": GPU_CHOICES[choice],
        "mode": mode,
        "autoscaling": {"min_replicas": 1, "max_replicas": 3},
        **extra,
    }


@pytest.mark.parametrize("mode", ["knative", "standard"])
@pytest.mark.parametrize("choice", sorted(GPU_CHOICES))
def test_every_gpu_choice_validates_in_both_modes(choice: str, mode: str) -> None:
    document = render(parse_config(gpu_config(choice, mode, canary_percent=10)), "ml")
    assert schema_errors(document, V0_20) == []
    stable = render(parse_config(gpu_config(choice, mode)), "ml")
    if mode == "standard":
        with_canary = with_standard_canary(stable, document["spec"]["predictor"], 10)
        assert schema_errors(with_canary, V0_20) == []
        assert with_canary["spec"]["canary"][0]["trafficPercent"] == 10


def test_the_examples_cover_the_documented_cases() -> None:
    assert [path.name for path in EXAMPLES] == [
        "cpu-only.yaml", "mig-standard.yaml", "time-sliced.yaml", "whole-gpu-knative-canary.yaml"
    ]  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_examples_render_and_validate_for_their_target_and_for_v0_20(path: Path) -> None:
    config = load_config(path)
    document = render(config)
    target = crd_version_for(KServeVersion.parse(config.kserve_version))
    assert schema_errors(document, target) == []
    assert schema_errors(document, V0_20) == []
    assert document["metadata"]["name"] == config.name


def test_a_standard_canary_is_refused_below_0_20() -> None:
    config = load_config(REPO_ROOT / "examples" / "deployments" / "mig-standard.yaml")
    with pytest.raises(UnsupportedError) as caught:
        render(config, target_version="0.16")
    assert caught.value.message == (
        "config 'churn-scorer' cannot be deployed on KServe 0.16: "
        "a Standard-mode canary (spec.canary) needs KServe >= 0.20"
    )
    assert (
        render(config, target_version="0.21")["spec"]["predictor"]["model"]["storageUri"]
        == "s3://models/churn-scorer/12"
    )


def test_keda_is_refused_on_0_14_and_versions_outside_the_range_too() -> None:
    keda = parse_config(
        {"name": "m", "image": "r/p@sha256:" + "1" * 64, "mode": "standard",
         "autoscaling": {"autoscaler_class": "keda", "scale_metric": "cpu"}}
    )  # fmt: skip
    with pytest.raises(UnsupportedError, match=r"KEDA autoscaler class .* needs KServe >= 0.15"):
        render(keda, target_version="0.14")
    with pytest.raises(InvalidInputError, match=r"outside the supported range 0\.14-0\.21"):
        render(keda, target_version="0.13")


def test_strict_validation_rejects_unknown_and_too_new_fields() -> None:
    document = render(parse_config(gpu_config("whole", "knative")), "ml")
    document["spec"]["tracing"] = {"enabled": True}  # SDK 0.21 field, absent from the 0.20 CRD
    document["spec"]["predictor"]["canaryTrafficPrecent"] = 10
    assert schema_errors(document, V0_20) == [
        "spec.predictor: Additional properties are not allowed ('canaryTrafficPrecent' was unexpected)",
        "spec: Additional properties are not allowed ('tracing' was unexpected)",
    ]
    with_canary = render(parse_config(gpu_config("whole", "standard")), "ml")
    with_canary["spec"]["canary"] = [{"trafficPercent": 5, "predictor": {"name": "c"}}]
    assert schema_errors(with_canary, KServeVersion(0, 16)) == [
        "spec: Additional properties are not allowed ('canary' was unexpected)"
    ]


def test_the_exported_json_schema_is_current() -> None:
    exported = (REPO_ROOT / "docs" / "deployment-config.schema.json").read_text(encoding="utf-8")
    assert exported == config_json_schema(), "regenerate: aiserving config-schema > docs/deployment-config.schema.json"
