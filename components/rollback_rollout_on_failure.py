"""Component: the exit handler that rolls back a progressive rollout its run started."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def rollback_rollout_on_failure(
    isvc_name: str, namespace: str, target: str, pipeline_run: str, status: dsl.PipelineTaskFinalStatus
) -> str:
    """Roll back the unfinished rollout this run started when a step failed or the run was cancelled.

    Args:
        isvc_name: InferenceService name.
        namespace: Kubernetes namespace of the InferenceService.
        target: cluster or render, as for the rollout step.
        pipeline_run: This run's ID; only a rollout stamped with it is rolled back.
        status: The final status of the guarded steps (set by Kubeflow Pipelines).

    Returns:
        What was done: nothing (the run succeeded), rolled back, or nothing to roll back.
    """
    from aiserving.steps.rollout import rollout_exit_step

    return rollout_exit_step(
        name=isvc_name, namespace=namespace, target=target, pipeline_run=pipeline_run, state=status.state,
        error_message=status.error_message,
    )  # fmt: skip
