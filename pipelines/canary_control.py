"""Pipeline ``canary-control``: set, promote or roll back a canary."""

from kfp import dsl

from components.promote_canary import promote_canary
from components.rollback_canary import rollback_canary
from components.set_canary_traffic import set_canary_traffic


@dsl.pipeline(
    name="canary-control",
    description="Change the canary of a KServe InferenceService: set its traffic percent, promote it to 100%, "
    "or roll back to the previous revision (also after a promotion).",
)
def canary_control(
    isvc_name: str = "demo-iris-classifier",
    namespace: str = "ai-serving",
    action: str = "set",
    percent: int = 10,
    target: str = "cluster",
) -> None:
    """Set, promote or roll back a canary.

    Args:
        isvc_name: InferenceService name.
        namespace: Kubernetes namespace of the InferenceService.
        action: set (use percent), promote or rollback.
        percent: Canary traffic percent for action set (0-100); ignored otherwise.
        target: cluster (change the live object) or render (only write the change it would make).
    """
    with dsl.If(action == "set", name="set"):
        set_canary_traffic(
            isvc_name=isvc_name, namespace=namespace, percent=percent, target=target
        ).set_caching_options(False)
    with dsl.Elif(action == "promote", name="promote"):
        promote_canary(isvc_name=isvc_name, namespace=namespace, target=target).set_caching_options(False)
    with dsl.Else(name="rollback"):
        rollback_canary(isvc_name=isvc_name, namespace=namespace, target=target).set_caching_options(False)
