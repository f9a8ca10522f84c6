"""Step: run one shard of a batch job (component run-batch-shard)."""

from __future__ import annotations

import contextlib
import json
import logging

log = logging.getLogger(__name__)


def run_shard_step(
    shard: int,
    output_uri: str,
    rows_per_request: int,
    max_concurrency: int,
    latency_tolerance: float,
    error_budget: float,
) -> str:
    """Run shard ``shard`` of the job planned at ``output_uri``; a shard already done is skipped.

    The plan recorded what to call: an endpoint, or a model URI this pod serves for the shard.

    Returns:
        The shard's counters as JSON, with ``skipped`` true when it was done before.

    Raises:
        RemoteServiceError: the job's failures passed the error budget.
        JobCancelledError: the job was cancelled.
    """
    from aiserving.steps.batch_model_server import InPodModelServer
    from batch_jobs.runner import JobSettings, open_job, shard_runner

    settings = JobSettings.of(
        rows_per_request=rows_per_request, max_concurrency=max_concurrency, latency_tolerance=latency_tolerance,
        error_budget=error_budget,
    )  # fmt: skip
    job = open_job(output_uri)
    plan, output, _ = job
    if shard in output.done_shards():
        log.info("shard %d is done already: skipped", shard)
        return json.dumps({"shard": shard, "skipped": True})
    recorded = output.model()
    endpoint_url, model_uri = recorded["endpoint_url"], recorded["model_uri"]
    with contextlib.ExitStack() as stack:
        if not endpoint_url:
            endpoint_url = stack.enter_context(InPodModelServer(model_uri, plan.model_name)).url
        runner = shard_runner(job, settings, endpoint_url=endpoint_url)
        counters = runner.run([shard]).get(shard)
    if counters is None:
        return json.dumps({"shard": shard, "skipped": True})
    return json.dumps({"shard": shard, "skipped": False, "items": counters.items, "errors": counters.errors,
                       "seconds": round(counters.seconds, 3)})  # fmt: skip
