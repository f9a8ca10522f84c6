"""The resolve → package → verify → build → deploy → report chain, shared by our pipelines.

Its inputs are declared once, here: ``ChainParameters`` (names and types), ``CHAIN_DEFAULTS`` and
``CHAIN_DESCRIPTIONS``. ``chain_inputs`` turns them into each pipeline's KFP signature and Args docstring.
"""

import inspect
import typing
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from kfp import dsl

from aiserving.steps.deploy import ServingTarget
from components.build_image import build_image
from components.deploy_inference_service import deploy_inference_service
from components.deployment_report import deployment_report
from components.package_model import package_model
from components.progressive_rollout import progressive_rollout
from components.resolve_model import resolve_model
from components.rollback_on_failure import rollback_on_failure
from components.verify_package import verify_package
from pipelines.credentials import with_mlflow_credentials, with_registry_credentials


@dataclass(frozen=True, kw_only=True)
class ChainParameters(ServingTarget):
    """The chain's inputs: the one definition of the parameters our deploy pipelines share.

    The deploy step's ``ServingTarget`` fields come first (inherited); these add what the other steps need.

    No field has a default, so mypy reports code that forgets one. Inside a pipeline function the
    values are KFP channels standing for values of these types.
    """

    model_uri: str
    tracking_uri: str
    registry_uri: str
    runtime: str
    package_name: str
    max_batch_size: int
    instance_kind: str
    allow_skipped_checks: bool
    image: str
    image_format: str
    insecure_registry: bool
    mlflow_secret: str
    registry_secret: str
    rollout_strategy: str
    rollout_steps: str
    prometheus_url: str


# The inputs of the progressive rollout that add_progressive_rollout reads; a pipeline without one omits them.
ROLLOUT_INPUTS = ("rollout_strategy", "rollout_steps", "prometheus_url")

CHAIN_DEFAULTS = ChainParameters(
    model_uri="models:/demo-iris-classifier@champion",
    tracking_uri="",
    registry_uri="",
    runtime="python",
    package_name="",
    max_batch_size=8,
    instance_kind="gpu",
    allow_skipped_checks=False,
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
    rollout_strategy="fixed",
    rollout_steps="5,10,25,50",
    prometheus_url="",
)

# What the Kubeflow UI shows for each input; a pipeline may say it more precisely (chain_inputs).
CHAIN_DESCRIPTIONS: Mapping[str, str] = {
    "model_uri": "models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest.",
    "tracking_uri": "MLflow tracking URI; empty to take it from the MLflow secret (key tracking_uri).",
    "registry_uri": "MLflow registry URI; empty to use the tracking URI.",
    "runtime": "Serving runtime: triton, torchserve, tfserving or python (our MLflow wrapper).",
    "package_name": "Model name inside the runtime; empty to derive it from the registered model name.",
    "max_batch_size": "Largest batch the runtime may form.",
    "instance_kind": "Where the runtime places model instances: gpu or cpu.",
    "allow_skipped_checks": "Let verify pass when some runtime checks cannot run in its pod (listed as skipped).",
    "image": "Target image REGISTRY/REPO:TAG (or oci-layout:PATH[:TAG]); it is pushed and pinned by digest.",
    "image_format": "modelcar (storageUri oci://) or predictor (the image is the predictor container).",
    "insecure_registry": "Use plain HTTP for the registry (test registries only).",
    "isvc_name": "InferenceService name (DNS-1123 label).",
    "namespace": "Kubernetes namespace of the InferenceService.",
    "deployment_mode": "KServe deployment mode: knative or standard.",
    "gpu_count": "GPUs (or GPU slices) per predictor replica; 0 for CPU only.",
    "gpu_resource": "nvidia.com/gpu (whole), nvidia.com/mig-1g.10gb (MIG) or nvidia.com/gpu.shared (time-sliced).",
    "canary_percent": "Percent of traffic for the new revision when a previous one is serving (0-100).",
    "deployment_overrides": "Further deployment-config fields as JSON (autoscaling, affinity, tolerations, ...).",
    "target": "cluster (apply with the pipeline's service account) or render (write and validate only).",
    "wait_timeout_s": "Seconds to wait for the new generation to become ready.",
    "mlflow_secret": "Kubernetes secret with MLflow tracking_uri/username/password/token keys (optional).",
    "registry_secret": "Kubernetes dockerconfigjson secret with registry credentials (optional).",
    "rollout_strategy": "fixed (the canary stays at canary_percent) or progressive (then step it on live metrics:\n"
    "promote, roll back or pause; docs/progressive-delivery.md). Use canary_percent 0 with progressive.",
    "rollout_steps": "Canary percents of a progressive rollout, in order; promotion follows the last.",
    "prometheus_url": "Prometheus of a progressive rollout; empty for http://prometheus-operated.monitoring.svc:9090.",
}

KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
PipelineBody = Callable[..., None]


def chain_inputs(
    *,
    leading: Sequence[inspect.Parameter] = (),
    omit: Collection[str] = (),
    descriptions: Mapping[str, str] | None = None,
) -> Callable[[PipelineBody], PipelineBody]:
    """Declare a pipeline's inputs as the chain's, so they are written once.

    KFP reads a pipeline's inputs from ``inspect.signature`` and its Args docstring; both honour
    ``__signature__`` and ``__doc__``, which this sets from ``ChainParameters``, ``CHAIN_DEFAULTS`` and
    ``CHAIN_DESCRIPTIONS``. The pipeline body takes the inputs as one ``ChainParameters`` plus the
    ``leading`` ones by name; an ``omit``-ted input is not a pipeline input and keeps its default.

    Args:
        leading: Inputs of this pipeline only, placed first; each needs a description.
        omit: Chain inputs this pipeline does not offer.
        descriptions: What this pipeline says instead of ``CHAIN_DESCRIPTIONS`` (and for ``leading``).
    """
    hints = typing.get_type_hints(ChainParameters)
    offered = [field.name for field in fields(ChainParameters) if field.name not in omit]
    chain = [inspect.Parameter(name, KEYWORD, default=getattr(CHAIN_DEFAULTS, name), annotation=hints[name])
             for name in offered]  # fmt: skip
    signature = inspect.Signature([*leading, *chain])
    described = {**CHAIN_DESCRIPTIONS, **(descriptions or {})}
    # A description's further lines are indented as Google-style continuation lines.
    args = "".join(f"\n    {name}: " + described[name].replace("\n", "\n        ") for name in signature.parameters)

    def declare(body: PipelineBody) -> PipelineBody:
        def pipeline(*channels: Any, **named: Any) -> None:
            # KFP calls a pipeline function with one channel per input, in signature order.
            inputs = {**dict(zip(signature.parameters, channels, strict=False)), **named}
            values = {name: inputs.pop(name) for name in offered}
            body(ChainParameters(**{**vars(CHAIN_DEFAULTS), **values}), **inputs)

        pipeline.__doc__ = f"{inspect.getdoc(body)}\n\nArgs:{args}"
        pipeline.__signature__ = signature  # type: ignore[attr-defined]
        pipeline.__annotations__ = {name: parameter.annotation for name, parameter in signature.parameters.items()}
        pipeline.__name__, pipeline.__qualname__ = body.__name__, body.__qualname__
        pipeline.__module__ = body.__module__
        return pipeline

    return declare


@contextmanager
def rolled_back_on_failure(params: ChainParameters) -> Iterator[None]:
    """Add the tasks defined inside under an exit handler that rolls back a canary this run started."""
    exit_task = rollback_on_failure(
        isvc_name=params.isvc_name, namespace=params.namespace, target=params.target,
        pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )  # fmt: skip
    with dsl.ExitHandler(
        exit_task.set_display_name("roll back on failure").set_caching_options(False), name="deploy-with-rollback"
    ):
        yield


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
    verified = verify_package(
        model=resolved.outputs["model"], package=packaged.outputs["package"],
        allow_skipped_checks=params.allow_skipped_checks,
    ).set_display_name("verify in runtime")  # fmt: skip
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
    add_progressive_rollout(params, deployed)
    return deployed


def add_progressive_rollout(params: ChainParameters, deployed: dsl.PipelineTask) -> None:
    """With ``rollout_strategy`` progressive, step the deployed canary on live metrics (the default knobs).

    A pipeline that omits the input keeps the plain "fixed" default and gets no rollout task at all.
    """
    strategy: object = params.rollout_strategy
    if isinstance(strategy, str):
        return
    with dsl.If(params.rollout_strategy == "progressive", name="progressive-rollout"):
        progressive_rollout(
            isvc_name=params.isvc_name, namespace=params.namespace, target=params.target,
            pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER, steps=params.rollout_steps, shadow=False,
            shadow_sink_url="", prometheus_url=params.prometheus_url, analysis={}, warmup_s=60.0,
            step_min_duration_s=300.0, failure_limit=0, undecided_policy="pause", dry_run=False,
        ).after(deployed).set_display_name("progressive rollout").set_caching_options(False)  # fmt: skip
