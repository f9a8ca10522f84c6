"""Component: a Markdown report of what a run deployed."""

from kfp import dsl

from components.artifacts import InferenceService
from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def deployment_report(
    model: dsl.Input[dsl.Model],
    package: dsl.Input[dsl.Model],
    image_ref: str,
    inference_service: dsl.Input[InferenceService],
    report: dsl.Output[dsl.Markdown],
) -> None:
    """Write a Markdown report (rendered by the Kubeflow UI) of the deployment.

    Args:
        model: The resolved model (lineage in its metadata).
        package: The package (runtime, format, digests in its metadata).
        image_ref: The digest-pinned image.
        inference_service: The InferenceService (URL, revision, traffic in its metadata).
        report: Lineage, image digest, GPU resources, canary state and traffic.
    """
    from aiserving.steps.report import report_step

    report_step(model=model, package=package, image_ref=image_ref, inference_service=inference_service, report=report)
