"""The resolve → package → verify → build → deploy → report chain, shared by our pipelines."""

from typing import Any

from kfp import dsl

from components.build_image import build_image
from components.deploy_inference_service import deploy_inference_service
from components.deployment_report import deployment_report
from components.package_model import package_model
from components.resolve_model import resolve_model
from components.verify_package import verify_package
from pipelines.credentials import with_mlflow_credentials, with_registry_credentials


def add_deploy_chain(
    *,
    model_uri: Any,
    tracking_uri: Any,
    registry_uri: Any,
    runtime: Any,
    package_name: Any,
    max_batch_size: Any,
    instance_kind: Any,
    image: Any,
    image_format: Any,
    insecure_registry: Any,
    isvc_name: Any,
    namespace: Any,
    deployment_mode: Any,
    gpu_count: Any,
    gpu_resource: Any,
    canary_percent: Any,
    deployment_overrides: Any,
    target: Any,
    wait_timeout_s: Any,
    mlflow_secret: Any,
    registry_secret: Any,
) -> dsl.PipelineTask:
    """Add the chain's tasks to the pipeline being defined; return the deploy task."""
    resolved = resolve_model(model_uri=model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
    # Steps that read or change live state never come from KFP's cache: an alias moves, a cluster changes.
    with_mlflow_credentials(resolved.set_display_name("resolve model").set_caching_options(False), mlflow_secret)
    packaged = package_model(
        model=resolved.outputs["model"], runtime=runtime, package_name=package_name,
        max_batch_size=max_batch_size, instance_kind=instance_kind,
    ).set_display_name("package for runtime")  # fmt: skip
    verified = verify_package(model=resolved.outputs["model"], package=packaged.outputs["package"]).set_display_name(
        "verify in runtime"
    )
    built = build_image(
        package=packaged.outputs["package"], image=image, image_format=image_format,
        insecure_registry=insecure_registry,
    ).after(verified)  # fmt: skip
    with_registry_credentials(
        built.set_display_name("build and push image").set_caching_options(False), registry_secret
    )
    deployed = deploy_inference_service(
        package=packaged.outputs["package"], image_ref=built.output, image_format=image_format, isvc_name=isvc_name,
        namespace=namespace,
        deployment_mode=deployment_mode, gpu_count=gpu_count, gpu_resource=gpu_resource,
        canary_percent=canary_percent, deployment_overrides=deployment_overrides, target=target,
        wait_timeout_s=wait_timeout_s, pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    ).set_display_name("deploy InferenceService").set_caching_options(False)  # fmt: skip
    deployment_report(
        model=resolved.outputs["model"], package=packaged.outputs["package"], image_ref=built.output,
        inference_service=deployed.outputs["inference_service"],
    ).set_display_name("deployment report")  # fmt: skip
    return deployed
