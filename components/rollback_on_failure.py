"""Component: the exit handler that undoes a half-done canary."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def rollback_on_failure(
    isvc_name: str, namespace: str, target: str, pipeline_run: str, status: dsl.PipelineTaskFinalStatus
) -> str:
    """Roll back the canary this run started when a step failed or the run was cancelled.

    Args:
        isvc_name: InferenceService name.
        namespace: Kubernetes namespace of the InferenceService.
        target: cluster or render, as for the deploy step.
        pipeline_run: This run's ID; only a canary stamped with it is rolled back.
        status: The final status of the guarded steps (set by Kubeflow Pipelines).

    Returns:
        What was done: nothing (the run succeeded), rolled-back, or nothing-to-roll-back.
    """
    from aiserving.steps.canary import rollback_on_failure_step

    return rollback_on_failure_step(
        isvc_name=isvc_name, namespace=namespace, target=target, pipeline_run=pipeline_run, state=status.state,
        error_message=status.error_message,
    )  # fmt: skip
