"""Pipeline ``deploy-model``: one registered model to a canary on GPUs, rolled back on failure."""

from kfp import dsl

from components.rollback_on_failure import rollback_on_failure
from pipelines.chain import add_deploy_chain


@dsl.pipeline(
    name="deploy-model",
    description="Resolve an MLflow model, package and verify it, build a digest-pinned image and deploy it "
    "as a KServe InferenceService with a canary split; a failed or cancelled run rolls the canary back.",
)
def deploy_model(
    model_uri: str = "models:/demo-iris-classifier@champion",
    tracking_uri: str = "",
    registry_uri: str = "",
    runtime: str = "python",
    package_name: str = "",
    max_batch_size: int = 8,
    instance_kind: str = "gpu",
    image: str = "registry.creativeflow.internal/models/demo-iris-classifier:latest",
    image_format: str = "modelcar",
    insecure_registry: bool = False,
    isvc_name: str = "demo-iris-classifier",
    namespace: str = "ai-serving",
    deployment_mode: str = "knative",
    gpu_count: int = 1,
    gpu_resource: str = "nvidia.com/gpu",
    canary_percent: int = 10,
    deployment_overrides: dict = {},  # noqa: B006 - KFP reads defaults from the signature
    target: str = "cluster",
    wait_timeout_s: int = 900,
    mlflow_secret: str = "mlflow-credentials",
    registry_secret: str = "registry-credentials",
) -> None:
    """Deploy one registered model as a canary.

    Args:
        model_uri: models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest.
        tracking_uri: MLflow tracking URI; empty to take it from the MLflow secret (key tracking_uri).
        registry_uri: MLflow registry URI; empty to use the tracking URI.
        runtime: Serving runtime: triton, torchserve, tfserving or python (our MLflow wrapper).
        package_name: Model name inside the runtime; empty to derive it from the registered model name.
        max_batch_size: Largest batch the runtime may form.
        instance_kind: Where the runtime places model instances: gpu or cpu.
        image: Target image REGISTRY/REPO:TAG (or oci-layout:PATH[:TAG]); it is pushed and pinned by digest.
        image_format: modelcar (storageUri oci://) or predictor (the image is the predictor container).
        insecure_registry: Use plain HTTP for the registry (test registries only).
        isvc_name: InferenceService name (DNS-1123 label).
        namespace: Kubernetes namespace of the InferenceService.
        deployment_mode: KServe deployment mode: knative or standard.
        gpu_count: GPUs (or GPU slices) per predictor replica; 0 for CPU only.
        gpu_resource: nvidia.com/gpu (whole), nvidia.com/mig-1g.10gb (MIG) or nvidia.com/gpu.shared (time-sliced).
        canary_percent: Percent of traffic for the new revision when a previous one is serving (0-100).
        deployment_overrides: Further deployment-config fields as JSON (autoscaling, affinity, tolerations, ...).
        target: cluster (apply with the pipeline's service account) or render (write and validate only).
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
        add_deploy_chain(
            model_uri=model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, runtime=runtime,
            package_name=package_name, max_batch_size=max_batch_size, instance_kind=instance_kind, image=image,
            image_format=image_format, insecure_registry=insecure_registry, isvc_name=isvc_name,
            namespace=namespace, deployment_mode=deployment_mode, gpu_count=gpu_count, gpu_resource=gpu_resource,
            canary_percent=canary_percent, deployment_overrides=deployment_overrides, target=target,
            wait_timeout_s=wait_timeout_s, mlflow_secret=mlflow_secret, registry_secret=registry_secret,
        )  # fmt: skip
