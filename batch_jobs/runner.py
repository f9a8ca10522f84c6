"""A batch job from start to end: plan (every check before any work), run shards, summarise.

The pipeline runs :func:`plan_job` once, a :func:`shard_runner` per shard (in parallel pods) and
:func:`summarise_job` at the end; ``aiserving job run`` runs the same three in one process
(:func:`run_job`, where one runner streams every shard).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batch_jobs.client import JobCancelledError, V2BatchClient, fetch_metadata
from batch_jobs.outputs import OutputLocation
from batch_jobs.progress import JobCounters
from batch_jobs.readers import InputFile, RowCache, input_files
from batch_jobs.schema import RowEncoder, encoder_for
from batch_jobs.settings import JobParameters, JobSettings
from batch_jobs.shards import ShardPlan, plan_shards
from batch_jobs.streaming import ProgressCallback, ShardRunner
from batch_jobs.uris import Storage, open_location
from serving_core.errors import InvalidInputError, NotFoundError, RemoteServiceError

log = logging.getLogger(__name__)

# Rows checked against the model's signature before the first request.
CHECKED_ROWS = 20


@dataclass
class PlannedJob:
    """A checked plan and the open locations it reads and writes."""

    plan: ShardPlan
    input: Storage
    output: OutputLocation
    encoder: RowEncoder | None
    resumed: bool
    # The rows read while planning: the first shards need the same file again.
    rows: RowCache
    # The V2 endpoint the plan checked the rows against ("" when the shards serve the model themselves).
    endpoint_url: str


def plan_job(
    input_uri: str,
    output_uri: str,
    *,
    endpoint_url: str,
    model_name: str,
    input_format: str = "auto",
    shard_size: int = 10000,
    s3_endpoint: str | None = None,
) -> PlannedJob:
    """Check everything, then claim the output location with the shard manifest.

    Checked before anything is written: the input is readable and parses, the model answers its V2
    metadata and the first rows fit its inputs (skipped without an endpoint, when the shards serve the
    model themselves), and the output location is empty or holds this same job.

    Raises:
        InvalidInputError, NotFoundError, PermissionDeniedError, UnreachableError: one of the checks failed;
            nothing was written.
    """
    source = open_location(input_uri, endpoint_url=s3_endpoint)
    files = input_files(source, input_format)
    cache = RowCache(source)
    counts = []
    for file in files:
        counts.append(len(cache.rows_of(file)))
    encoder = None
    if endpoint_url:
        metadata = fetch_metadata(endpoint_url, model_name)
        first = next(number for number, count in enumerate(counts) if count) if any(counts) else 0
        encoder = encoder_for(metadata, cache.rows_of(files[first])[:CHECKED_ROWS], f"{input_uri} {files[first].key}")
    plan = plan_shards(input_uri, files, counts, shard_size, model_name)
    output = OutputLocation(open_location(output_uri, endpoint_url=s3_endpoint))
    resumed = output.claim(plan)
    output.clear_cancel()
    log.info("job %s: %d items in %d shards%s", plan.fingerprint, plan.total_items, len(plan.shards),
             " (resuming)" if resumed else "")  # fmt: skip
    return PlannedJob(plan, source, output, encoder, resumed, cache, endpoint_url)


def open_job(output_uri: str, *, s3_endpoint: str | None = None) -> tuple[ShardPlan, OutputLocation, Storage]:
    """The plan and locations of a job planned earlier (a shard pod, ``job status``).

    Raises:
        NotFoundError: no job manifest at ``output_uri``.
    """
    output = OutputLocation(open_location(output_uri, endpoint_url=s3_endpoint))
    plan = output.manifest()
    if plan is None:
        raise NotFoundError(f"no batch job at {output_uri} (no manifest)", hint="check the output URI of the job")
    return plan, output, open_location(plan.input_uri, endpoint_url=s3_endpoint)


def shard_runner(
    job: PlannedJob | tuple[ShardPlan, OutputLocation, Storage],
    settings: JobSettings,
    *,
    endpoint_url: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> ShardRunner:
    """A runner for the shards of ``job``; checks the first rows against the model when the plan did not.

    ``endpoint_url`` defaults to the planned job's; a job opened with :func:`open_job` needs one.

    Raises:
        InvalidInputError, NotFoundError, UnreachableError: the model's metadata or the rows' fit.
    """
    if isinstance(job, PlannedJob):
        plan, output, source, encoder, cache = job.plan, job.output, job.input, job.encoder, job.rows
        endpoint_url = endpoint_url or job.endpoint_url
        if endpoint_url != job.endpoint_url:
            encoder = None  # checked against another endpoint's model
    else:
        (plan, output, source), encoder = job, None
        cache = RowCache(source)
    if not endpoint_url:
        raise InvalidInputError("no model endpoint to call", hint="pass the endpoint URL (or serve the model first)")
    if encoder is None:
        first = plan.files[plan.shards[0].segments[0].file]
        rows = cache.rows_of(InputFile(first.key, first.size, first.version, first.format))
        metadata = fetch_metadata(endpoint_url, plan.model_name)
        encoder = encoder_for(metadata, rows[:CHECKED_ROWS], f"{plan.input_uri}")
    client = V2BatchClient(endpoint_url, plan.model_name, encoder, settings.concurrency)
    return ShardRunner(plan, source, output, client, settings, cache, on_progress)


def summarise_job(output: OutputLocation, plan: ShardPlan, settings: JobSettings) -> dict[str, Any]:
    """Merge every shard's counters; mark the job done when all shards are done within the error budget.

    Raises:
        RemoteServiceError: shards are missing or the failures pass the error budget (the summary is in
            the message; ``_SUCCESS`` is not written).
    """
    done = output.done_shards()
    missing = sorted(set(range(len(plan.shards))) - done)
    counters = JobCounters.merged([output.counters(index) for index in sorted(done)])
    summary = job_summary(plan, counters, done)
    if missing:
        raise RemoteServiceError(
            f"{len(missing)} of {len(plan.shards)} shards are not done (first: {missing[:5]})",
            hint="re-run the job: finished shards are skipped",
        )
    budget = settings.budget_items(plan.total_items)
    if counters.errors > budget:
        raise RemoteServiceError(
            f"{counters.errors} of {plan.total_items} items failed, past the error budget of {budget} "
            f"({settings.error_budget:g})",
            hint=f"see the reasons in {output.storage.uri} errors/",
        )
    output.mark_success(summary)
    return summary


def job_summary(plan: ShardPlan, counters: JobCounters, done: set[int]) -> dict[str, Any]:
    """What a person wants to know about a job: counts, rate, latency quantiles."""
    p50, p99 = counters.latency_quantile_s(0.5), counters.latency_quantile_s(0.99)
    return {
        "fingerprint": plan.fingerprint,
        "input_uri": plan.input_uri,
        "model_name": plan.model_name,
        "total_items": plan.total_items,
        "shards": len(plan.shards),
        "shards_done": len(done),
        "items_done": counters.items - counters.errors,
        "errors": counters.errors,
        "items_per_s": round(counters.items_per_s, 1),
        "latency_p50_s": p50,
        "latency_p99_s": p99,
    }


def run_job(
    job: PlannedJob,
    settings: JobSettings,
    *,
    endpoint_url: str | None = None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every shard of a planned job not done yet, in this process, and summarise.

    ``endpoint_url`` defaults to the one the job was planned against (a job planned for a model URI
    passes the address it serves the model at). ``on_progress(items_done, errors, concurrency,
    total_items)`` follows the whole job.

    Raises:
        JobCancelledError: ``aiserving job cancel`` asked the job to stop.
        RemoteServiceError: the failures passed the error budget.
    """
    done = job.output.done_shards()
    finished = JobCounters.merged([job.output.counters(index) for index in sorted(done)])

    def progress(counters: JobCounters, concurrency: int) -> None:
        if on_progress is not None:
            items, errors = finished.items + counters.items, finished.errors + counters.errors
            on_progress(items, errors, concurrency, job.plan.total_items)

    runner = shard_runner(job, settings, endpoint_url=endpoint_url, on_progress=progress)
    runner.run(range(len(job.plan.shards)), finished)
    return summarise_job(job.output, job.plan, settings)


def plan_and_run(
    parameters: JobParameters,
    endpoint_url: str,
    *,
    s3_endpoint: str | None = None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> dict[str, Any]:
    """:func:`plan_job` then :func:`run_job` with ``parameters``, calling the model at ``endpoint_url``.

    Raises:
        InvalidInputError, NotFoundError, UnreachableError: a check of :func:`plan_job`; nothing was written.
        JobCancelledError, RemoteServiceError: see :func:`run_job`.
    """
    job = plan_job(
        parameters.input_uri, parameters.output_uri, endpoint_url=endpoint_url, model_name=parameters.name,
        input_format=parameters.input_format, shard_size=parameters.shard_size, s3_endpoint=s3_endpoint,
    )  # fmt: skip
    return run_job(job, parameters.settings(), on_progress=on_progress)


__all__ = [
    "JobCancelledError", "JobParameters", "JobSettings", "PlannedJob", "open_job", "plan_and_run", "plan_job",
    "run_job", "shard_runner", "summarise_job",
]  # fmt: skip
