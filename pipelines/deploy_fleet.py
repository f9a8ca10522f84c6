"""Pipeline ``deploy-fleet``: deploy several models in parallel, each as its own canary."""

from kfp import dsl

from pipelines.chain import CHAIN_DEFAULTS, ChainParameters, add_deploy_chain

FLEET_EXAMPLE = [
    {
        "model_uri": CHAIN_DEFAULTS.model_uri,
        "runtime": CHAIN_DEFAULTS.runtime,
        "image": CHAIN_DEFAULTS.image,
        "isvc_name": CHAIN_DEFAULTS.isvc_name,
        "gpu_count": CHAIN_DEFAULTS.gpu_count,
        "gpu_resource": CHAIN_DEFAULTS.gpu_resource,
        "canary_percent": CHAIN_DEFAULTS.canary_percent,
    }
]


# KFP reads the inputs from this signature and the Args below, so the shared ones repeat ChainParameters;
# their defaults come from CHAIN_DEFAULTS and tests/unit/test_pipeline_params.py catches drift.
@dsl.pipeline(
    name="deploy-fleet",
    description="Deploy a list of models in parallel (one resolve-package-verify-build-deploy chain each, "
    "each a canary on its own InferenceService).",
)
def deploy_fleet(
    models: list = FLEET_EXAMPLE,
    tracking_uri: str = CHAIN_DEFAULTS.tracking_uri,
    registry_uri: str = CHAIN_DEFAULTS.registry_uri,
    max_batch_size: int = CHAIN_DEFAULTS.max_batch_size,
    instance_kind: str = CHAIN_DEFAULTS.instance_kind,
    image_format: str = CHAIN_DEFAULTS.image_format,
    insecure_registry: bool = CHAIN_DEFAULTS.insecure_registry,
    namespace: str = CHAIN_DEFAULTS.namespace,
    deployment_mode: str = CHAIN_DEFAULTS.deployment_mode,
    deployment_overrides: dict[str, object] = CHAIN_DEFAULTS.deployment_overrides,
    target: str = CHAIN_DEFAULTS.target,
    wait_timeout_s: int = CHAIN_DEFAULTS.wait_timeout_s,
    mlflow_secret: str = CHAIN_DEFAULTS.mlflow_secret,
    registry_secret: str = CHAIN_DEFAULTS.registry_secret,
) -> None:
    """Deploy a fleet of models.

    Args:
        models: JSON list; each item has model_uri, runtime, image, isvc_name, gpu_count, gpu_resource and
            canary_percent (as in deploy-model).
        tracking_uri: MLflow tracking URI; empty to take it from the MLflow secret (key tracking_uri).
        registry_uri: MLflow registry URI; empty to use the tracking URI.
        max_batch_size: Largest batch the runtimes may form.
        instance_kind: Where the runtimes place model instances: gpu or cpu.
        image_format: modelcar (storageUri oci://) or predictor (the image is the predictor container).
        insecure_registry: Use plain HTTP for the registry (test registries only).
        namespace: Kubernetes namespace of the InferenceServices.
        deployment_mode: KServe deployment mode: knative or standard.
        deployment_overrides: Deployment-config fields applied to every model, as JSON.
        target: cluster (apply with the pipeline's service account) or render (write and validate only).
        wait_timeout_s: Seconds to wait for each new generation to become ready.
        mlflow_secret: Kubernetes secret with MLflow tracking_uri/username/password/token keys (optional).
        registry_secret: Kubernetes dockerconfigjson secret with registry credentials (optional).
    """
    # At most 4 chains at once: GPU canaries need GPUs for two revisions each.
    with dsl.ParallelFor(models, parallelism=4, name="each-model") as item:
        params = ChainParameters(
            model_uri=item.model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, runtime=item.runtime,
            package_name="", max_batch_size=max_batch_size, instance_kind=instance_kind, image=item.image,
            image_format=image_format, insecure_registry=insecure_registry, isvc_name=item.isvc_name,
            namespace=namespace, deployment_mode=deployment_mode, gpu_count=item.gpu_count,
            gpu_resource=item.gpu_resource, canary_percent=item.canary_percent,
            deployment_overrides=deployment_overrides, target=target, wait_timeout_s=wait_timeout_s,
            mlflow_secret=mlflow_secret, registry_secret=registry_secret,
        )  # fmt: skip
        add_deploy_chain(params)
