"""Pipeline ``deploy-fleet``: deploy several models in parallel, each as its own canary."""

import inspect
from dataclasses import replace

from kfp import dsl

from components.rollback_fleet_on_failure import rollback_fleet_on_failure
from pipelines.chain import (
    CHAIN_DEFAULTS,
    KEYWORD,
    ROLLOUT_INPUTS,
    ChainParameters,
    add_deploy_chain,
    chain_inputs,
)

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


@dsl.pipeline(
    name="deploy-fleet",
    description="Deploy a list of models in parallel (one resolve-package-verify-build-deploy chain each, "
    "each a canary on its own InferenceService); on failure roll back every canary the run started; "
    "a per-model result table.",
)
@chain_inputs(
    # A bare list: KFP takes a ParallelFor item's fields from the element type and refuses Any or object there.
    leading=[inspect.Parameter("models", KEYWORD, default=FLEET_EXAMPLE, annotation=list)],
    omit=[*FLEET_EXAMPLE[0], "package_name", *ROLLOUT_INPUTS],
    descriptions={
        "models": "JSON list (aiserving plan-fleet's fleet-models.json); each item has model_uri, runtime, image,\n"
        "isvc_name, gpu_count, gpu_resource and canary_percent (as in deploy-model).",
        "max_batch_size": "Largest batch the runtimes may form.",
        "instance_kind": "Where the runtimes place model instances: gpu or cpu.",
        "namespace": "Kubernetes namespace of the InferenceServices.",
        "deployment_overrides": "Deployment-config fields applied to every model, as JSON.",
        "wait_timeout_s": "Seconds to wait for each new generation to become ready.",
    },
)
def deploy_fleet(shared: ChainParameters, models: list[dict[str, object]]) -> None:
    """Deploy a fleet of models; if any chain fails, roll back every canary the run started."""
    # A ParallelFor cannot hold an exit handler, so one handler guards the whole fan-out and takes the list.
    exit_task = rollback_fleet_on_failure(
        models=models, namespace=shared.namespace, target=shared.target, pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER
    )
    guarded = dsl.ExitHandler(
        exit_task.set_display_name("roll back the fleet on failure").set_caching_options(False),
        name="deploy-fleet-with-rollback",
    )
    # At most 4 chains at once: GPU canaries need GPUs for two revisions each.
    with guarded, dsl.ParallelFor(models, parallelism=4, name="each-model") as item:
        params = replace(
            shared, model_uri=item.model_uri, runtime=item.runtime, image=item.image, isvc_name=item.isvc_name,
            gpu_count=item.gpu_count, gpu_resource=item.gpu_resource, canary_percent=item.canary_percent,
        )  # fmt: skip
        add_deploy_chain(params)
