"""Component: tell whether an alias moved since the live deployment."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def check_alias_change(
    model_uri: str, tracking_uri: str, registry_uri: str, isvc_name: str, namespace: str, target: str
) -> bool:
    """Compare the version an alias points to with the one recorded on the live InferenceService.

    Args:
        model_uri: An alias URI, models:/NAME@ALIAS.
        tracking_uri: MLflow tracking URI; empty to use MLFLOW_TRACKING_URI from the step's environment.
        registry_uri: MLflow registry URI; empty to use the tracking URI.
        isvc_name: InferenceService whose recorded model version is compared.
        namespace: Kubernetes namespace of the InferenceService.
        target: cluster (read the live object) or render (read the last rendered manifest).

    Returns:
        True when the alias points to another version than the one deployed (or nothing is deployed).
    """
    from aiserving.steps.alias_change import alias_changed_step

    return alias_changed_step(
        model_uri=model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, isvc_name=isvc_name,
        namespace=namespace, target=target,
    )  # fmt: skip
