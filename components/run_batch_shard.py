"""Component: run one shard of a batch job."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def run_batch_shard(
    shard: int,
    output_uri: str,
    rows_per_request: int,
    max_concurrency: int,
    latency_tolerance: float,
    error_budget: float,
) -> str:
    """Infer every item of one shard and write its result file atomically; a finished shard is skipped.

    The model (endpoint, or model URI to serve in this pod) is the one the plan recorded at output_uri.

    Args:
        shard: Index of the shard in the manifest at output_uri.
        output_uri: The job's output location (its manifest says what to read and which model to call).
        rows_per_request: Items sent in one V2 request.
        max_concurrency: Most requests in flight; the client adapts below it.
        latency_tolerance: Keep the predictor's p90 latency within this multiple of its unloaded p90.
        error_budget: Fraction of the job's items that may fail; past it the shard stops.

    Returns:
        The shard's counters as JSON (items, errors, seconds, skipped).
    """
    from aiserving.steps.batch_shard import run_shard_step

    return run_shard_step(
        shard=shard, output_uri=output_uri, rows_per_request=rows_per_request, max_concurrency=max_concurrency,
        latency_tolerance=latency_tolerance, error_budget=error_budget,
    )  # fmt: skip
