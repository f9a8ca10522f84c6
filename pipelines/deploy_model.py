"""Pipeline ``deploy-model``: one registered model to a canary on GPUs, rolled back on failure."""

from kfp import dsl

from pipelines.chain import ChainParameters, add_deploy_chain, chain_inputs, rolled_back_on_failure


@dsl.pipeline(
    name="deploy-model",
    description="Resolve an MLflow model, package and verify it, build a digest-pinned image and deploy it "
    "as a KServe InferenceService with a canary split; a failed or cancelled run rolls the canary back.",
)
@chain_inputs()
def deploy_model(params: ChainParameters) -> None:
    """Deploy one registered model as a canary."""
    with rolled_back_on_failure(params):
        add_deploy_chain(params)
