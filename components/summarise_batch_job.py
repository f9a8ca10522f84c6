"""Component: sum up a batch job: metrics, a Markdown report, pass or fail on the error budget."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def summarise_batch_job(
    output_uri: str, error_budget: float, metrics: dsl.Output[dsl.Metrics], report: dsl.Output[dsl.Markdown]
) -> str:
    """Read every shard's counters, log KFP metrics and write the report; mark the job done.

    Args:
        output_uri: The job's output location.
        error_budget: Fraction of the items that may fail; past it the job fails.
        metrics: Items done, items per second, errors.
        report: Throughput over time, latency distribution, errors by reason.

    Returns:
        The job summary as JSON.
    """
    from aiserving.steps.batch_summary import summarise_step

    return summarise_step(output_uri=output_uri, error_budget=error_budget, metrics=metrics, report=report)
