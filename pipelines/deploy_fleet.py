"""Pipeline ``deploy-fleet``: deploy several models in parallel, each as its own canary."""

from kfp import dsl

from pipelines.chain import add_deploy_chain

FLEET_EXAMPLE = [
    {
        "model_uri": "models:/demo-iris-classifier@champion",
        "runtime": "python",
        "image": "registry.creativeflow.internal/models/demo-iris-classifier:latest",
        "isvc_name": "demo-iris-classifier",
        "gpu_count": 1,
        "gpu_resource": "nvidia.com/gpu",
        "canary_percent": 10,
    }
]


@dsl.pipeline(
    name="deploy-fleet",
    description="Deploy a list of models in parallel (one resolve-package-verify-build-deploy chain each, "
    "each a canary on its own InferenceService).",
)
def deploy_fleet(
    models: list = FLEET_EXAMPLE,
    tracking_uri: str = "",
    registry_uri: str = "",
    max_batch_size: int = 8,
    instance_kind: str = "gpu",
    image_format: str = "modelcar",
    insecure_registry: bool = False,
    namespace: str = "ai-serving",
    deployment_mode: str = "knative",
    deployment_overrides: dict = {},  # noqa: B006 - KFP reads defaults from the signature
    target: str = "cluster",
    wait_timeout_s: int = 900,
    mlflow_secret: str = "mlflow-credentials",
    registry_secret: str = "registry-credentials",
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
        add_deploy_chain(
            model_uri=item.model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, runtime=item.runtime,
            package_name="", max_batch_size=max_batch_size, instance_kind=instance_kind, image=item.image,
            image_format=image_format, insecure_registry=insecure_registry, isvc_name=item.isvc_name,
            namespace=namespace, deployment_mode=deployment_mode, gpu_count=item.gpu_count,
            gpu_resource=item.gpu_resource, canary_percent=item.canary_percent,
            deployment_overrides=deployment_overrides, target=target, wait_timeout_s=wait_timeout_s,
            mlflow_secret=mlflow_secret, registry_secret=registry_secret,
        )  # fmt: skip
