"""Component: set the canary traffic percent of an InferenceService."""

from kfp import dsl

from components.artifacts import InferenceService
from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def set_canary_traffic(
    isvc_name: str, namespace: str, percent: int, target: str, inference_service: dsl.Output[InferenceService]
) -> str:
    """Send a percentage of traffic to the newest revision; the previous one keeps the rest.

    Args:
        isvc_name: InferenceService name.
        namespace: Kubernetes namespace of the InferenceService.
        percent: Percent of traffic for the canary (0-100).
        target: cluster (change the live object) or render (only write the change it would make).
        inference_service: The InferenceService and its traffic split after the change.

    Returns:
        The traffic split as text, for example "canary 10% / stable 90%".
    """
    from aiserving.steps.canary import canary_step

    return canary_step(
        action="set", isvc_name=isvc_name, namespace=namespace, target=target, inference_service=inference_service,
        percent=percent,
    )  # fmt: skip
