"""Step: sum up a batch job (component summarise-batch-job): KFP metrics, report, pass or fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from aiserving.steps.artifacts import ArtifactLike


class MetricsLike(Protocol):
    """A KFP Metrics output artifact."""

    def log_metric(self, metric: str, value: float) -> None:
        """Record one scalar metric."""


def summarise_step(output_uri: str, error_budget: float, metrics: MetricsLike, report: ArtifactLike) -> str:
    """Log items done, items/s and errors as KFP metrics and write the Markdown report, then judge the job.

    The metrics and the report are written even when the job fails, so a failed run still shows why.

    Returns:
        The job summary as JSON.

    Raises:
        RemoteServiceError: shards are missing or failures passed the error budget.
    """
    from aiserving.steps.batch_report import render_batch_report
    from batch_jobs.progress import JobCounters
    from batch_jobs.runner import JobSettings, job_summary, open_job, summarise_job

    plan, output, _ = open_job(output_uri)
    done = output.done_shards()
    counters = JobCounters.merged([output.counters(index) for index in sorted(done)])
    errors: list[dict[str, Any]] = []
    for index in sorted(done):
        errors += output.errors(index)
    summary = job_summary(plan, counters, done)
    metrics.log_metric("items_done", summary["items_done"])
    metrics.log_metric("items_per_s", summary["items_per_s"])
    metrics.log_metric("errors", summary["errors"])
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text(render_batch_report(summary, counters, errors), encoding="utf-8")
    return json.dumps(summarise_job(output, plan, JobSettings(error_budget=error_budget)))
