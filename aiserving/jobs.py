"""Batch inference jobs for MLOps code: ``aiserving.jobs.run(...)``, ``status(...)``, ``cancel(...)``.

A job runs in this process (no ``host``), or as a run of the ``batch-inference`` pipeline on a Kubeflow
Pipelines server (``host=...``). Either way its state lives in its output location (manifest, one result
file per finished shard, ``_SUCCESS``), so ``status`` and ``cancel`` work on the output URI for both; with
a KFP run ID they also ask the server.

    from aiserving import jobs

    done = jobs.run(jobs.JobParameters("s3://jobs/in/", "s3://jobs/out/run-1/", endpoint_url="http://iris.svc"))
    handle = jobs.run(jobs.JobParameters("s3://jobs/in/", "s3://jobs/out/run-2/", inference_service="iris"),
                      host=KFP_URL)
    jobs.status(output_uri="s3://jobs/out/run-2/", run_id=handle.run_id, host=KFP_URL)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batch_jobs.settings import JobParameters
from serving_core.errors import InvalidInputError

__all__ = ["JobHandle", "JobParameters", "cancel", "run", "status"]

PIPELINE = "batch-inference"


@dataclass(frozen=True)
class JobHandle:
    """A started job: where its output goes and, for a pipeline run, the run."""

    output_uri: str
    summary: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    url: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"output_uri": self.output_uri, "summary": self.summary, "run_id": self.run_id, "url": self.url}


def run(
    parameters: JobParameters,
    *,
    host: str | None = None,
    experiment: str = "Default",
    run_name: str | None = None,
    kfp_namespace: str | None = None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> JobHandle:
    """Run a batch job here, or submit it as a ``batch-inference`` run when ``host`` is given.

    Here, shards run in this process (resuming after the finished ones) and the call returns the
    summary; ``on_progress(items_done, errors, concurrency, total_items)`` follows it. With a host the
    call returns as soon as the run is created.

    Raises:
        InvalidInputError, NotFoundError, UnreachableError: a check failed before any work (see
            :func:`batch_jobs.runner.plan_job`), or the KFP server refused the run.
        RemoteServiceError: the failures passed the error budget.
        JobCancelledError: :func:`cancel` stopped the job.
    """
    if host:
        from aiserving.pipeline_ops.triggers import submit_run

        submitted = submit_run(PIPELINE, host, parameters.as_arguments(), experiment, run_name, kfp_namespace)
        return JobHandle(parameters.output_uri, run_id=submitted.run_id, url=submitted.url)
    return JobHandle(parameters.output_uri, summary=_run_here(parameters, on_progress))


def _run_here(parameters: JobParameters, on_progress: Callable[[int, int, int, int], None] | None) -> dict[str, Any]:
    from aiserving.steps.batch_model_server import InPodModelServer
    from aiserving.steps.batch_plan import resolve_endpoint
    from batch_jobs.runner import plan_and_run

    with contextlib.ExitStack() as stack:
        endpoint = resolve_endpoint(parameters)
        if not endpoint:
            endpoint = stack.enter_context(InPodModelServer(parameters.model_uri, parameters.name)).url
        return plan_and_run(parameters, endpoint, on_progress=on_progress)


def status(
    output_uri: str = "", *, run_id: str = "", host: str | None = None, kfp_namespace: str | None = None
) -> dict[str, Any]:
    """Where a job stands: shards and items done, errors, finished or not; with a run ID also the run's state.

    The output location tells the job's progress; ``run_id`` with ``host`` adds the KFP run's state.

    Raises:
        InvalidInputError: neither an output URI nor a run ID with a host.
        NotFoundError: no job at the output URI, or no such run.
    """
    if not output_uri and not (run_id and host):
        raise InvalidInputError("status needs the job's output URI or a run ID with --host", hint="pass one")
    state: dict[str, Any] = {}
    if output_uri:
        from batch_jobs.progress import JobCounters
        from batch_jobs.runner import job_summary, open_job

        plan, output, _ = open_job(output_uri)
        done = output.done_shards()
        counters = JobCounters.merged([output.counters(index) for index in sorted(done)])
        finished = output.success()
        state |= {
            "output_uri": output_uri,
            "state": "succeeded" if finished else "cancelling" if output.cancel_requested() else "incomplete",
            **job_summary(plan, counters, done),
        }
    if run_id and host:
        from aiserving.pipeline_ops.triggers import run_state

        state |= {"run_id": run_id, "run_state": run_state(host, run_id, kfp_namespace)}
    return state


def cancel(
    output_uri: str = "", *, run_id: str = "", host: str | None = None, kfp_namespace: str | None = None
) -> dict[str, Any]:
    """Stop a job: running shards stop at their next answer (finished shards are kept; a re-run resumes).

    With ``run_id`` and ``host`` the KFP run is terminated as well.

    Raises:
        InvalidInputError: neither an output URI nor a run ID with a host.
        NotFoundError: no job at the output URI.
    """
    if not output_uri and not (run_id and host):
        raise InvalidInputError("cancel needs the job's output URI or a run ID with --host", hint="pass one")
    done: dict[str, Any] = {}
    if output_uri:
        from batch_jobs.runner import open_job

        _, output, _ = open_job(output_uri)
        output.request_cancel()
        done["output_uri"] = output_uri
    if run_id and host:
        from aiserving.pipeline_ops.triggers import terminate_run

        terminate_run(host, run_id, kfp_namespace)
        done["run_id"] = run_id
    return {"cancel_requested": True, **done}
