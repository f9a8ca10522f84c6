"""Component: resolve a registered MLflow model and download it."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def resolve_model(model_uri: str, tracking_uri: str, registry_uri: str, model: dsl.Output[dsl.Model]) -> str:
    """Resolve a model in the MLflow Model Registry and download it with its lineage.

    Args:
        model_uri: models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest.
        tracking_uri: MLflow tracking URI; empty to use MLFLOW_TRACKING_URI from the step's environment.
        registry_uri: MLflow registry URI; empty to use the tracking URI.
        model: The downloaded MLflow model directory with lineage.json; metadata holds the lineage.

    Returns:
        The resolved model version.
    """
    from aiserving.steps.resolve import resolve_step

    return resolve_step(model_uri=model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, model=model)
