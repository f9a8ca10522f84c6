"""Pipeline ``deploy-on-alias-change``: for recurring runs that follow an alias."""

from kfp import dsl

from components.check_alias_change import check_alias_change
from components.rollback_on_failure import rollback_on_failure
from pipelines.chain import CHAIN_DEFAULTS, ChainParameters, add_deploy_chain
from pipelines.credentials import with_mlflow_credentials


# KFP reads the inputs from this signature and the Args below, so they repeat ChainParameters;
# the defaults come from CHAIN_DEFAULTS and tests/unit/test_pipeline_params.py catches drift.
@dsl.pipeline(
    name="deploy-on-alias-change",
    description="For recurring runs: deploy the version an MLflow alias points to, as a canary, only when it "
    "differs from the version recorded on the live InferenceService; otherwise do nothing.",
)
def deploy_on_alias_change(
    model_uri: str = CHAIN_DEFAULTS.model_uri,
    tracking_uri: str = CHAIN_DEFAULTS.tracking_uri,
    registry_uri: str = CHAIN_DEFAULTS.registry_uri,
    runtime: str = CHAIN_DEFAULTS.runtime,
    package_name: str = CHAIN_DEFAULTS.package_name,
    max_batch_size: int = CHAIN_DEFAULTS.max_batch_size,
    instance_kind: str = CHAIN_DEFAULTS.instance_kind,
    image: str = CHAIN_DEFAULTS.image,
    image_format: str = CHAIN_DEFAULTS.image_format,
    insecure_registry: bool = CHAIN_DEFAULTS.insecure_registry,
    isvc_name: str = CHAIN_DEFAULTS.isvc_name,
    namespace: str = CHAIN_DEFAULTS.namespace,
    deployment_mode: str = CHAIN_DEFAULTS.deployment_mode,
    gpu_count: int = CHAIN_DEFAULTS.gpu_count,
    gpu_resource: str = CHAIN_DEFAULTS.gpu_resource,
    canary_percent: int = CHAIN_DEFAULTS.canary_percent,
    deployment_overrides: dict[str, object] = CHAIN_DEFAULTS.deployment_overrides,
    target: str = CHAIN_DEFAULTS.target,
    wait_timeout_s: int = CHAIN_DEFAULTS.wait_timeout_s,
    mlflow_secret: str = CHAIN_DEFAULTS.mlflow_secret,
    registry_secret: str = CHAIN_DEFAULTS.registry_secret,
) -> None:
    """Deploy when the alias moved.

    Args:
        model_uri: The alias to follow, models:/NAME@ALIAS.
        tracking_uri: MLflow tracking URI; empty to take it from the MLflow secret (key tracking_uri).
        registry_uri: MLflow registry URI; empty to use the tracking URI.
        runtime: Serving runtime: triton, torchserve, tfserving or python (our MLflow wrapper).
        package_name: Model name inside the runtime; empty to derive it from the registered model name.
        max_batch_size: Largest batch the runtime may form.
        instance_kind: Where the runtime places model instances: gpu or cpu.
        image: Target image REGISTRY/REPO:TAG (or oci-layout:PATH[:TAG]); it is pushed and pinned by digest.
        image_format: modelcar (storageUri oci://) or predictor (the image is the predictor container).
        insecure_registry: Use plain HTTP for the registry (test registries only).
        isvc_name: InferenceService whose recorded model version is compared, and then updated.
        namespace: Kubernetes namespace of the InferenceService.
        deployment_mode: KServe deployment mode: knative or standard.
        gpu_count: GPUs (or GPU slices) per predictor replica; 0 for CPU only.
        gpu_resource: nvidia.com/gpu (whole), nvidia.com/mig-1g.10gb (MIG) or nvidia.com/gpu.shared (time-sliced).
        canary_percent: Percent of traffic for the new revision (0-100).
        deployment_overrides: Further deployment-config fields as JSON (autoscaling, affinity, tolerations, ...).
        target: cluster (read and apply the live object) or render (compare with the last rendered manifest).
        wait_timeout_s: Seconds to wait for the new generation to become ready.
        mlflow_secret: Kubernetes secret with MLflow tracking_uri/username/password/token keys (optional).
        registry_secret: Kubernetes dockerconfigjson secret with registry credentials (optional).
    """
    exit_task = rollback_on_failure(
        isvc_name=isvc_name, namespace=namespace, target=target, pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER
    )
    with dsl.ExitHandler(
        exit_task.set_display_name("roll back on failure").set_caching_options(False), name="deploy-with-rollback"
    ):
        changed = check_alias_change(
            model_uri=model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, isvc_name=isvc_name,
            namespace=namespace, target=target,
        )  # fmt: skip
        with_mlflow_credentials(
            changed.set_display_name("did the alias move?").set_caching_options(False), mlflow_secret
        )
        # A single boolean output: the KFP local runner resolves conditions on `.output` only.
        with dsl.If(changed.output == True, name="alias-moved"):  # noqa: E712 - builds a KFP condition
            params = ChainParameters(
                model_uri=model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, runtime=runtime,
                package_name=package_name, max_batch_size=max_batch_size, instance_kind=instance_kind, image=image,
                image_format=image_format, insecure_registry=insecure_registry, isvc_name=isvc_name,
                namespace=namespace, deployment_mode=deployment_mode, gpu_count=gpu_count,
                gpu_resource=gpu_resource, canary_percent=canary_percent,
                deployment_overrides=deployment_overrides, target=target, wait_timeout_s=wait_timeout_s,
                mlflow_secret=mlflow_secret, registry_secret=registry_secret,
            )  # fmt: skip
            add_deploy_chain(params)
