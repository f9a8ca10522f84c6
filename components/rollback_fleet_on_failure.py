"""Component: deploy-fleet's exit handler: roll back the run's canaries and write the per-model result table."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def rollback_fleet_on_failure(
    models: list,  # type: ignore[type-arg]  # KFP accepts only a bare list here
    namespace: str,
    target: str,
    pipeline_run: str,
    status: dsl.PipelineTaskFinalStatus,
    report: dsl.Output[dsl.Markdown],
) -> str:
    """Roll back every canary this run started when a step failed or the run was cancelled; report each model.

    Args:
        models: The deploy-fleet ``models`` list (fleet-models.json); each item's isvc_name is checked.
        namespace: Kubernetes namespace of the InferenceServices.
        target: cluster or render, as for the deploy step.
        pipeline_run: This run's ID; only canaries stamped with it are rolled back.
        status: The final status of the guarded steps (set by Kubeflow Pipelines).
        report: The per-model result table (Markdown).

    Returns:
        A one-line summary of what was rolled back.
    """
    from aiserving.steps.fleet_rollback import fleet_rollback_step

    return fleet_rollback_step(
        models=models, namespace=namespace, target=target, pipeline_run=pipeline_run, state=status.state,
        error_message=status.error_message, report=report,
    )  # fmt: skip
