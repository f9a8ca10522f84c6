"""Pipeline ``deploy-model``: one registered model to a canary on GPUs, rolled back on failure."""

from kfp import dsl

from components.rollback_on_failure import rollback_on_failure
from pipelines.chain import ChainParameters, add_deploy_chain, chain_inputs


@dsl.pipeline(
    name="deploy-model",
    description="Resolve an MLflow model, package and verify it, build a digest-pinned image and deploy it "
    "as a KServe InferenceService with a canary split; a failed or cancelled run rolls the canary back.",
)
@chain_inputs()
def deploy_model(params: ChainParameters) -> None:
    """Deploy one registered model as a canary."""
    exit_task = rollback_on_failure(
        isvc_name=params.isvc_name, namespace=params.namespace, target=params.target,
        pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )  # fmt: skip
    with dsl.ExitHandler(
        exit_task.set_display_name("roll back on failure").set_caching_options(False), name="deploy-with-rollback"
    ):
        add_deploy_chain(params)
