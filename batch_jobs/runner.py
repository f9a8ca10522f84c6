"""A batch job from start to end: plan (every check before any work), run shards, summarise.

The pipeline runs :func:`plan_job` once, :func:`run_shard` per shard (in parallel pods) and
:func:`summarise_job` at the end; ``aiserving job run`` runs the same three in one process.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batch_jobs.aimd import AimdSettings
from batch_jobs.client import Batch, ItemResult, JobCancelledError, V2BatchClient, fetch_metadata
from batch_jobs.outputs import OutputLocation
from batch_jobs.progress import JobCounters
from batch_jobs.readers import InputFile, Row, input_files, read_rows
from batch_jobs.schema import RowEncoder, encoder_for
from batch_jobs.shards import ShardPlan, plan_shards
from batch_jobs.uris import Storage, open_location
from serving_core.errors import InvalidInputError, RemoteServiceError

log = logging.getLogger(__name__)

# Rows checked against the model's signature before the first request.
CHECKED_ROWS = 20


@dataclass(frozen=True)
class JobSettings:
    """How a job calls the model and how many failures it tolerates."""

    rows_per_request: int = 32
    error_budget: float = 0.001
    aimd: AimdSettings = field(default_factory=AimdSettings)

    def __post_init__(self) -> None:
        """Refuse settings that cannot work.

        Raises:
            InvalidInputError: rows per request below 1 or an error budget outside [0, 1].
        """
        if self.rows_per_request < 1:
            raise InvalidInputError(f"rows per request {self.rows_per_request} is below 1", hint="use 1 or more")
        if not 0.0 <= self.error_budget <= 1.0:
            raise InvalidInputError(
                f"error budget {self.error_budget:g} is not a fraction in [0, 1]", hint="e.g. 0.001 for 0.1 %"
            )

    def budget_items(self, total_items: int) -> int:
        """How many items may fail in a job of ``total_items``."""
        return math.floor(self.error_budget * total_items)


class _RowCache:
    """The rows of the input file read last: consecutive shards mostly read the same file."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.key: str | None = None
        self.rows: list[Row] = []

    def rows_of(self, file: InputFile) -> list[Row]:
        if self.key != file.key:
            self.rows, self.key = read_rows(self.storage, file), file.key
        return self.rows


@dataclass
class PlannedJob:
    """A checked plan and the open locations it reads and writes."""

    plan: ShardPlan
    input: Storage
    output: OutputLocation
    encoder: RowEncoder | None
    resumed: bool
    # The rows read while planning: the first shards need the same file again.
    rows: _RowCache


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
    cache = _RowCache(source)
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
    return PlannedJob(plan, source, output, encoder, resumed, cache)


def open_job(output_uri: str, *, s3_endpoint: str | None = None) -> tuple[ShardPlan, OutputLocation, Storage]:
    """The plan and locations of a job planned earlier (a shard pod, ``job status``).

    Raises:
        NotFoundError: no job manifest at ``output_uri``.
    """
    from serving_core.errors import NotFoundError

    output = OutputLocation(open_location(output_uri, endpoint_url=s3_endpoint))
    plan = output.manifest()
    if plan is None:
        raise NotFoundError(f"no batch job at {output_uri} (no manifest)", hint="check the output URI of the job")
    return plan, output, open_location(plan.input_uri, endpoint_url=s3_endpoint)


ProgressCallback = Callable[[JobCounters, int], None]


@dataclass
class ShardRunner:
    """Runs shards of one planned job through one client (its concurrency carries over from shard to shard)."""

    plan: ShardPlan
    input: Storage
    output: OutputLocation
    client: V2BatchClient
    settings: JobSettings
    on_progress: ProgressCallback | None = None
    _cache: _RowCache | None = None

    def run(self, index: int, job_counters: JobCounters | None = None) -> JobCounters | None:
        """Run shard ``index`` unless it is done; returns its counters, ``None`` when it was skipped.

        Raises:
            JobCancelledError: the job was cancelled (the shard keeps no partial output).
            RemoteServiceError: the job's failures passed the error budget (the shard's errors are written
                for diagnosis, its results are not, so a re-run redoes it).
        """
        if index in self.output.done_shards():
            return None
        shard = self.plan.shards[index]
        cache = self._cache = self._cache or _RowCache(self.input)
        sources: dict[int, tuple[str, int]] = {}
        batches: list[Batch] = []
        errors: list[dict[str, object]] = []
        counters = JobCounters()
        ids: list[int] = []
        rows_in_batch: list[Row] = []
        item = shard.first_item
        for segment in shard.segments:
            file = self.plan.files[segment.file]
            rows = cache.rows_of(InputFile(file.key, file.size, file.version, file.format))
            for row_number in range(segment.start, segment.stop):
                sources[item] = (file.key, row_number)
                ids.append(item)
                rows_in_batch.append(rows[row_number])
                item += 1
                if len(ids) == self.settings.rows_per_request:
                    batches.append(Batch(tuple(ids), tuple(rows_in_batch)))
                    ids, rows_in_batch = [], []
        if ids:
            batches.append(Batch(tuple(ids), tuple(rows_in_batch)))
        results: dict[int, dict[str, object]] = {}
        budget = self.settings.budget_items(self.plan.total_items)
        earlier_errors = job_counters.errors if job_counters else 0

        def collect(outcomes: list[ItemResult], latency_s: float) -> None:
            failed = 0
            for outcome in outcomes:
                source, row = sources[outcome.id]
                if outcome.error is None:
                    results[outcome.id] = {"id": outcome.id, "source": source, "row": row, "outputs": outcome.outputs}
                else:
                    failed += 1
                    errors.append({"id": outcome.id, "source": source, "row": row, "error": outcome.error})
            counters.record(len(outcomes), failed, latency_s if failed < len(outcomes) else None)
            if earlier_errors + counters.errors > budget:
                raise _BudgetSpent()
            if self.on_progress is not None:
                self.on_progress(counters, self.client.controller.allowed(0.0))

        try:
            self.client.run(batches, collect, self.output.cancel_requested)
        except _BudgetSpent as spent:
            self.output.storage.write(f"errors/part-{index:05d}.jsonl", _lines(errors))
            raise RemoteServiceError(
                f"shard {index}: {earlier_errors + counters.errors} failed items pass the error budget of {budget} "
                f"({self.settings.error_budget:g} of {self.plan.total_items} items)",
                hint=f"see the reasons in {self.output.storage.uri} errors/; fix the input or the model, then re-run",
            ) from spent
        self.output.write_shard(index, [results[key] for key in sorted(results)], errors, counters)
        return counters


class _BudgetSpent(Exception):
    """Raised inside the answer callback to stop a shard whose errors passed the budget."""


def _lines(records: list[dict[str, object]]) -> bytes:
    from batch_jobs.outputs import jsonl

    return jsonl(sorted(records, key=lambda record: int(str(record["id"]))))


def shard_runner(
    job: PlannedJob | tuple[ShardPlan, OutputLocation, Storage],
    *,
    endpoint_url: str,
    model_name: str,
    settings: JobSettings,
    on_progress: ProgressCallback | None = None,
) -> ShardRunner:
    """A runner for the shards of ``job``; checks the first rows against the model when the plan did not.

    Raises:
        InvalidInputError, NotFoundError, UnreachableError: the model's metadata or the rows' fit.
    """
    if isinstance(job, PlannedJob):
        plan, output, source, encoder, cache = job.plan, job.output, job.input, job.encoder, job.rows
    else:
        (plan, output, source), encoder = job, None
        cache = _RowCache(source)
    if encoder is None:
        first = plan.files[plan.shards[0].segments[0].file]
        rows = cache.rows_of(InputFile(first.key, first.size, first.version, first.format))
        encoder = encoder_for(fetch_metadata(endpoint_url, model_name), rows[:CHECKED_ROWS], f"{plan.input_uri}")
    client = V2BatchClient(endpoint_url, model_name, encoder, settings.aimd)
    return ShardRunner(plan, source, output, client, settings, on_progress, cache)


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
    input_uri: str,
    output_uri: str,
    *,
    endpoint_url: str,
    model_name: str,
    input_format: str = "auto",
    shard_size: int = 10000,
    settings: JobSettings | None = None,
    s3_endpoint: str | None = None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Plan, run every shard not done yet, in order, in this process, and summarise.

    ``on_progress(items_done, errors, concurrency, total_items)`` follows the whole job.

    Raises:
        JobCancelledError: ``aiserving job cancel`` asked the job to stop.
        RemoteServiceError: the failures passed the error budget.
        InvalidInputError, NotFoundError, UnreachableError: a check of :func:`plan_job`; nothing was written.
    """
    settings = settings or JobSettings()
    job = plan_job(
        input_uri, output_uri, endpoint_url=endpoint_url, model_name=model_name, input_format=input_format,
        shard_size=shard_size, s3_endpoint=s3_endpoint,
    )  # fmt: skip
    done = job.output.done_shards()
    finished = JobCounters.merged([job.output.counters(index) for index in sorted(done)])

    def shard_progress(counters: JobCounters, concurrency: int) -> None:
        if on_progress is not None:
            items = finished.items + counters.items
            on_progress(items, finished.errors + counters.errors, concurrency, job.plan.total_items)

    runner = shard_runner(job, endpoint_url=endpoint_url, model_name=model_name, settings=settings,
                          on_progress=shard_progress)  # fmt: skip
    for shard in job.plan.shards:
        counters = runner.run(shard.index, finished)
        if counters is not None:
            finished = JobCounters.merged([finished, counters])
            shard_progress(JobCounters(), runner.client.controller.allowed(0.0))
    return summarise_job(job.output, job.plan, settings)


__all__ = ["JobCancelledError", "JobSettings", "plan_job", "run_job", "shard_runner", "summarise_job"]
