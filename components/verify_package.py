"""Component: verify a package in its real runtime before any image is built."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def verify_package(model: dsl.Input[dsl.Model], package: dsl.Input[dsl.Model], report: dsl.Output[dsl.Markdown]) -> str:
    """Load the package in its runtime, predict on the input example and compare with MLflow.

    The step fails on a load failure or a prediction mismatch, so a broken model never reaches the
    cluster; checks this pod cannot run (for example without a GPU) are listed as skipped, with why.

    Args:
        model: The MLflow model the package was made from (the reference predictions come from it).
        package: The package directory from package-model.
        report: A Markdown table of every check and its outcome.

    Returns:
        passed, or passed-with-skips when some checks could not run here.
    """
    from aiserving.steps.verify import verify_step

    return verify_step(model=model, package=package, report=report)
