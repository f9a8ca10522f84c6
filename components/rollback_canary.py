"""Component: roll an InferenceService back to its previous revision."""

from kfp import dsl

from components.artifacts import InferenceService
from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def rollback_canary(
    isvc_name: str, namespace: str, target: str, inference_service: dsl.Output[InferenceService]
) -> str:
    """Roll back: the previous revision serves 100%, also after a promotion (its spec is restored).

    Args:
        isvc_name: InferenceService name.
        namespace: Kubernetes namespace of the InferenceService.
        target: cluster (change the live object) or render (only write the change it would make).
        inference_service: The InferenceService and its traffic split after the rollback.

    Returns:
        The traffic split as text.
    """
    from aiserving.steps.canary import canary_step

    return canary_step(
        action="rollback", isvc_name=isvc_name, namespace=namespace, target=target, inference_service=inference_service
    )
