"""Component: verify a package in its real runtime before any image is built."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def verify_package(
    model: dsl.Input[dsl.Model],
    package: dsl.Input[dsl.Model],
    allow_skipped_checks: bool,
    report: dsl.Output[dsl.Markdown],
) -> str:
    """Load the package in its runtime, predict on the input example and compare with MLflow.

    The step fails on a load failure or a prediction mismatch, so a broken model never reaches the
    cluster. A check this pod cannot run (for example without a GPU) fails the step too, unless
    allow_skipped_checks is set; the report lists the skipped checks and whether skipping was allowed.

    Args:
        model: The MLflow model the package was made from (the reference predictions come from it).
        package: The package directory from package-model.
        allow_skipped_checks: Pass although some checks could not run here (they are listed as skipped).
        report: A Markdown table of every check and its outcome.

    Returns:
        passed, or passed-with-skips when skipping was allowed and some checks could not run here.
    """
    from aiserving.steps.verify import verify_step

    return verify_step(model=model, package=package, report=report, allow_skipped_checks=allow_skipped_checks)
