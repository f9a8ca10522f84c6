"""Pipeline ``deploy-on-alias-change``: for recurring runs that follow an alias."""

from kfp import dsl

from components.check_alias_change import check_alias_change
from pipelines.chain import ChainParameters, add_deploy_chain, chain_inputs, rolled_back_on_failure
from pipelines.credentials import with_mlflow_credentials


@dsl.pipeline(
    name="deploy-on-alias-change",
    description="For recurring runs: deploy the version an MLflow alias points to, as a canary, only when it "
    "differs from the version recorded on the live InferenceService; otherwise do nothing.",
)
@chain_inputs(
    descriptions={
        "model_uri": "The alias to follow, models:/NAME@ALIAS.",
        "isvc_name": "InferenceService whose recorded model version is compared, and then updated.",
        "canary_percent": "Percent of traffic for the new revision (0-100).",
        "target": "cluster (read and apply the live object) or render (compare with the last rendered manifest).",
    }
)
def deploy_on_alias_change(params: ChainParameters) -> None:
    """Deploy when the alias moved."""
    with rolled_back_on_failure(params):
        changed = check_alias_change(
            model_uri=params.model_uri, tracking_uri=params.tracking_uri, registry_uri=params.registry_uri,
            isvc_name=params.isvc_name, namespace=params.namespace, target=params.target,
        )  # fmt: skip
        with_mlflow_credentials(
            changed.set_display_name("did the alias move?").set_caching_options(False), params.mlflow_secret
        )
        # A single boolean output: the KFP local runner resolves conditions on `.output` only.
        with dsl.If(changed.output == True, name="alias-moved"):  # noqa: E712 - builds a KFP condition
            add_deploy_chain(params)
