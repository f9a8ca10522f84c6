"""The resolve → package → verify → build → deploy → report chain, shared by our pipelines."""

from dataclasses import dataclass

from kfp import dsl

from components.build_image import build_image
from components.deploy_inference_service import deploy_inference_service
from components.deployment_report import deployment_report
from components.package_model import package_model
from components.resolve_model import resolve_model
from components.verify_package import verify_package
from pipelines.credentials import with_mlflow_credentials, with_registry_credentials


@dataclass(frozen=True, kw_only=True)
class ChainParameters:
    """The chain's inputs: the one definition of the parameters our deploy pipelines share.

    KFP reads a pipeline's inputs from its own signature and Args docstring, so deploy-model,
    deploy-on-alias-change and deploy-fleet repeat these names and types (described there) and take
    their defaults from ``CHAIN_DEFAULTS``; tests/unit/test_pipeline_params.py fails when they drift.
    No field has a default, so mypy reports a pipeline that forgets to pass one on. Inside a
    pipeline function the values are KFP channels standing for values of these types.
    """

    model_uri: str
    tracking_uri: str
    registry_uri: str
    runtime: str
    package_name: str
    max_batch_size: int
    instance_kind: str
    image: str
    image_format: str
    insecure_registry: bool
    isvc_name: str
    namespace: str
    deployment_mode: str
    gpu_count: int
    gpu_resource: str
    canary_percent: int
    deployment_overrides: dict[str, object]
    target: str
    wait_timeout_s: int
    mlflow_secret: str
    registry_secret: str


CHAIN_DEFAULTS = ChainParameters(
    model_uri="models:/demo-iris-classifier@champion",
    tracking_uri="",
    registry_uri="",
    runtime="python",
    package_name="",
    max_batch_size=8,
    instance_kind="gpu",
    image="registry.creativeflow.internal/models/demo-iris-classifier:latest",
    image_format="modelcar",
    insecure_registry=False,
    isvc_name="demo-iris-classifier",
    namespace="ai-serving",
    deployment_mode="knative",
    gpu_count=1,
    gpu_resource="nvidia.com/gpu",
    canary_percent=10,
    deployment_overrides={},
    target="cluster",
    wait_timeout_s=900,
    mlflow_secret="mlflow-credentials",
    registry_secret="registry-credentials",
)


def add_deploy_chain(params: ChainParameters) -> dsl.PipelineTask:
    """Add the chain's tasks to the pipeline being defined; return the deploy task."""
    resolved = resolve_model(
        model_uri=params.model_uri, tracking_uri=params.tracking_uri, registry_uri=params.registry_uri
    )
    # Steps that read or change live state never come from KFP's cache: an alias moves, a cluster changes.
    with_mlflow_credentials(resolved.set_display_name("resolve model").set_caching_options(False), params.mlflow_secret)
    packaged = package_model(
        model=resolved.outputs["model"], runtime=params.runtime, package_name=params.package_name,
        max_batch_size=params.max_batch_size, instance_kind=params.instance_kind,
    ).set_display_name("package for runtime")  # fmt: skip
    verified = verify_package(model=resolved.outputs["model"], package=packaged.outputs["package"]).set_display_name(
        "verify in runtime"
    )
    built = build_image(
        package=packaged.outputs["package"], image=params.image, image_format=params.image_format,
        insecure_registry=params.insecure_registry,
    ).after(verified)  # fmt: skip
    with_registry_credentials(
        built.set_display_name("build and push image").set_caching_options(False), params.registry_secret
    )
    deployed = deploy_inference_service(
        package=packaged.outputs["package"], image_ref=built.output, image_format=params.image_format,
        isvc_name=params.isvc_name, namespace=params.namespace, deployment_mode=params.deployment_mode,
        gpu_count=params.gpu_count, gpu_resource=params.gpu_resource, canary_percent=params.canary_percent,
        deployment_overrides=params.deployment_overrides, target=params.target,
        wait_timeout_s=params.wait_timeout_s, pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    ).set_display_name("deploy InferenceService").set_caching_options(False)  # fmt: skip
    deployment_report(
        model=resolved.outputs["model"], package=packaged.outputs["package"], image_ref=built.output,
        inference_service=deployed.outputs["inference_service"],
    ).set_display_name("deployment report")  # fmt: skip
    return deployed
