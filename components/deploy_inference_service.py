"""Component: create or update the KServe InferenceService with a canary split."""

from kfp import dsl

from components.artifacts import InferenceService
from components.image import COMPONENTS_IMAGE


# KFP reads a component's inputs from its own signature, so this repeats DeployParameters' fields;
# tests/unit/test_pipeline_params.py keeps the two equal.
@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def deploy_inference_service(
    package: dsl.Input[dsl.Model],
    image_ref: str,
    image_format: str,
    isvc_name: str,
    namespace: str,
    deployment_mode: str,
    gpu_count: int,
    gpu_resource: str,
    canary_percent: int,
    deployment_overrides: dict[str, object],
    target: str,
    wait_timeout_s: int,
    pipeline_run: str,
    inference_service: dsl.Output[InferenceService],
    manifest: dsl.Output[dsl.Artifact],
) -> str:
    """Create or update an InferenceService serving the image, with GPUs and a canary percent.

    The InferenceService artifact is written as soon as the object is applied, before the wait,
    so the UI links to it and a cancelled run can roll it back.

    Args:
        package: The package directory (its package.json gives runtime, format and protocol).
        image_ref: The digest-pinned image from build-image.
        image_format: modelcar (the image is mounted as storageUri oci://) or predictor (it is the container).
        isvc_name: InferenceService name (DNS-1123 label).
        namespace: Kubernetes namespace of the InferenceService.
        deployment_mode: knative or standard.
        gpu_count: GPUs (or GPU slices) per predictor replica; 0 for CPU only.
        gpu_resource: nvidia.com/gpu (whole), nvidia.com/mig-1g.10gb (MIG) or nvidia.com/gpu.shared (time-sliced).
        canary_percent: Traffic percent for the new revision when one is already serving (0-100).
        deployment_overrides: Further deployment-config fields as JSON (autoscaling, node affinity, ...).
        target: cluster (apply with the pod's service account or kubeconfig) or render (write and validate only).
        wait_timeout_s: Seconds to wait for readiness of this generation.
        pipeline_run: The Kubeflow run ID, stamped on the InferenceService so the exit handler knows its canary.
        inference_service: Name, namespace, URL, revision and traffic of the InferenceService.
        manifest: The rendered InferenceService YAML.

    Returns:
        The InferenceService URL, or the manifest path with target render.
    """
    from aiserving.steps.deploy import DeployParameters, deploy_step

    parameters = DeployParameters(
        image_ref=image_ref, image_format=image_format, isvc_name=isvc_name, namespace=namespace,
        deployment_mode=deployment_mode, gpu_count=gpu_count, gpu_resource=gpu_resource,
        canary_percent=canary_percent, deployment_overrides=deployment_overrides, target=target,
        wait_timeout_s=wait_timeout_s, pipeline_run=pipeline_run,
    )  # fmt: skip
    return deploy_step(parameters, package=package, inference_service=inference_service, manifest=manifest)
