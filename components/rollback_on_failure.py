"""Component: the exit handler that undoes a half-done canary."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def rollback_on_failure(isvc_name: str, namespace: str, target: str, status: dsl.PipelineTaskFinalStatus) -> str:
    """Roll the canary back when any step of the run failed or the run was cancelled.

    Args:
        isvc_name: InferenceService name.
        namespace: Kubernetes namespace of the InferenceService.
        target: cluster or render, as for the deploy step.
        status: The final status of the guarded steps (set by Kubeflow Pipelines).

    Returns:
        What was done: nothing (the run succeeded), rolled-back, or nothing-to-roll-back.
    """
    from aiserving.steps.canary import rollback_on_failure_step

    return rollback_on_failure_step(isvc_name, namespace, target, status.state, status.error_message)
