import pytest

from aiserving.steps.deploy import already_deployed, build_config, gpu_config
from inference_services.deploy import render
from model_packaging.manifest import ModelFormat, PackageManifest, SourceRef, TensorSpec
from serving_core import isvc_lineage
from serving_core.errors import InvalidInputError

DIGEST = "sha256:" + "b" * 64
IMAGE = "registry.example.com/models/fraud@sha256:" + "a" * 64


def _manifest(runtime: str = "python", model_format: str = "mlflow", version: str | None = None) -> PackageManifest:
    return PackageManifest(
        runtime=runtime, model_name="fraud", model_format=ModelFormat(name=model_format, version=version),
        protocol_version="v2", source_flavor="sklearn", conversion="none",
        inputs=[TensorSpec(name="input_0", datatype="FP32", shape=[-1, 4])],
        outputs=[TensorSpec(name="output_0", datatype="INT64", shape=[-1])],
        max_batch_size=8, instance_kind="gpu",
        source=SourceRef(location="/x", lineage_digest=DIGEST, registered_name="fraud det", registered_version="7"),
        package_digest=DIGEST,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("count", "resource", "expected"),
    [
        (0, "nvidia.com/gpu", None),
        (2, "nvidia.com/gpu", {"count": 2, "sharing": "whole"}),
        (1, "nvidia.com/gpu.shared", {"count": 1, "sharing": "time-sliced"}),
        (
            1,
            "nvidia.com/mig-1g.10gb",
            {"count": 1, "sharing": "mig", "mig_profile": "1g.10gb", "mig_strategy": "mixed"},
        ),
    ],
)
def test_gpu_resource_names_map_to_sharing(count: int, resource: str, expected: dict | None) -> None:
    assert gpu_config(count, resource) == expected


def test_unknown_gpu_resource_names_the_value_and_the_choices() -> None:
    with pytest.raises(InvalidInputError, match=r"gpu_resource 'amd\.com/gpu'") as caught:
        gpu_config(1, "amd.com/gpu")
    assert "nvidia.com/mig-1g.10gb" in str(caught.value)


def test_modelcar_config_for_the_wrapper_runtime() -> None:
    config = build_config(
        _manifest(), IMAGE, image_format="modelcar", isvc_name="fraud", namespace="ai", deployment_mode="knative",
        gpu_count=1, gpu_resource="nvidia.com/gpu", canary_percent=10, overrides={"memory": "4Gi"},
        target="cluster", pipeline_run="run-1",
    )  # fmt: skip
    assert config.model_dump(mode="json", exclude_defaults=True) == {
        "name": "fraud",
        "namespace": "ai",
        "runtime": "creativeflow-mlflow-wrapper",
        "model_format": "mlflow",
        "storage_uri": f"oci://{IMAGE}",
        "protocol_version": "v2",
        "memory": "4Gi",
        "gpu": {},  # count 1 and whole GPUs are the defaults
        "canary_percent": 10,
        "lineage": {"model_name": "fraud-det", "model_version": "7", "digest": DIGEST, "pipeline_run": "run-1"},
    }


def test_predictor_image_config_has_no_runtime() -> None:
    config = build_config(
        _manifest(), IMAGE, image_format="predictor", isvc_name="fraud", namespace="ai", deployment_mode="standard",
        gpu_count=0, gpu_resource="nvidia.com/gpu", canary_percent=100, overrides={}, target="render",
    )  # fmt: skip
    assert config.image == IMAGE
    assert config.storage_uri is None
    assert config.runtime is None
    assert config.gpu is None


def test_a_local_layout_cannot_go_to_a_cluster() -> None:
    with pytest.raises(InvalidInputError, match="a cluster cannot pull it"):
        build_config(
            _manifest(), "oci-layout:/tmp/images/fraud@sha256:" + "a" * 64, image_format="modelcar",
            isvc_name="fraud", namespace="ai", deployment_mode="knative", gpu_count=1,
            gpu_resource="nvidia.com/gpu", canary_percent=10, overrides={}, target="cluster",
        )  # fmt: skip


def test_bad_override_names_the_field() -> None:
    with pytest.raises(InvalidInputError, match="canary_percent"):
        build_config(
            _manifest(), IMAGE, image_format="modelcar", isvc_name="fraud", namespace="ai",
            deployment_mode="knative", gpu_count=1, gpu_resource="nvidia.com/gpu", canary_percent=150,
            overrides={}, target="cluster",
        )  # fmt: skip


def _rendered(gpus: int = 1, **annotations: str) -> dict:
    config = build_config(
        _manifest(), IMAGE, image_format="modelcar", isvc_name="fraud", namespace="ai", deployment_mode="knative",
        gpu_count=gpus, gpu_resource="nvidia.com/gpu", canary_percent=10, overrides={}, target="cluster",
        pipeline_run="run-1",
    )  # fmt: skip
    document = render(config, "ai")
    document["metadata"]["annotations"].update(annotations)
    return document


def test_a_live_object_equal_to_the_rendered_one_is_already_deployed() -> None:
    live = _rendered(**{"kubectl.kubernetes.io/last-applied-configuration": "{}"})  # someone else's annotation
    live["spec"]["predictor"]["canaryTrafficPercent"] = 100  # a promoted canary: where the rollout stands
    live["spec"]["predictor"]["name"] = "stable"  # the name a Standard-mode promotion gives the predictor
    live["metadata"]["annotations"][isvc_lineage.PIPELINE_RUN_ANNOTATION] = "run-0"  # the run that last changed it

    assert already_deployed(live, _rendered()) is True


def test_any_other_difference_is_deployed() -> None:
    more_gpus = _rendered(gpus=2)
    other_digest = _rendered(**{isvc_lineage.MODEL_DIGEST_ANNOTATION: "sha256:" + "c" * 64})
    relabelled = _rendered()
    relabelled["metadata"]["labels"][isvc_lineage.MODEL_VERSION_LABEL] = "6"

    assert [already_deployed(live, _rendered()) for live in (more_gpus, other_digest, relabelled)] == [False] * 3
