"""Batch inference jobs for MLOps code: ``aiserving.jobs.run(...)``, ``status(...)``, ``cancel(...)``.

A job runs in this process (no ``host``), or as a run of the ``batch-inference`` pipeline on a Kubeflow
Pipelines server (``host=...``). Either way its state lives in its output location (manifest, one result
file per finished shard, ``_SUCCESS``), so ``status`` and ``cancel`` work on the output URI for both; with
a KFP run ID they also ask the server.

    from aiserving import jobs

    summary = jobs.run("s3://jobs/in/", "s3://jobs/out/run-1/", endpoint_url="http://iris.ai-serving.svc")
    handle = jobs.run("s3://jobs/in/", "s3://jobs/out/run-2/", inference_service="iris", host=KFP_URL)
    jobs.status(output_uri="s3://jobs/out/run-2/", run_id=handle.run_id, host=KFP_URL)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from serving_core.errors import InvalidInputError

PIPELINE = "batch-inference"


@dataclass(frozen=True)
class JobOptions:
    """How a job reads, calls the model and tolerates failures (the pipeline's inputs of the same names)."""

    input_format: str = "auto"
    shard_size: int = 10000
    rows_per_request: int = 32
    max_concurrency: int = 64
    latency_tolerance: float = 2.0
    error_budget: float = 0.001


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
    input_uri: str,
    output_uri: str,
    *,
    inference_service: str = "",
    namespace: str = "ai-serving",
    endpoint_url: str = "",
    model_name: str = "",
    model_uri: str = "",
    options: JobOptions | None = None,
    host: str | None = None,
    experiment: str = "Default",
    run_name: str | None = None,
    kfp_namespace: str | None = None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> JobHandle:
    """Run a batch job here, or submit it as a ``batch-inference`` run when ``host`` is given.

    Here, shards run one after another in this process (resuming after the finished ones) and the call
    returns the summary; ``on_progress(items_done, errors, concurrency, total_items)`` follows it. With a
    host the call returns as soon as the run is created.

    Raises:
        InvalidInputError, NotFoundError, UnreachableError: a check failed before any work (see
            :func:`batch_jobs.runner.plan_job`), or the KFP server refused the run.
        RemoteServiceError: the failures passed the error budget.
        JobCancelledError: :func:`cancel` stopped the job.
    """
    options = options or JobOptions()
    if host:
        from aiserving.pipeline_ops.triggers import submit_run

        arguments = {
            "input_uri": input_uri, "output_uri": output_uri, "inference_service": inference_service,
            "namespace": namespace, "endpoint_url": endpoint_url, "model_name": model_name, "model_uri": model_uri,
            "input_format": options.input_format, "shard_size": options.shard_size,
            "rows_per_request": options.rows_per_request, "max_concurrency": options.max_concurrency,
            "latency_tolerance": options.latency_tolerance, "error_budget": options.error_budget,
        }  # fmt: skip
        submitted = submit_run(PIPELINE, host, arguments, experiment, run_name, kfp_namespace)
        return JobHandle(output_uri, run_id=submitted.run_id, url=submitted.url)
    return JobHandle(output_uri, summary=_run_here(input_uri, output_uri, inference_service, namespace, endpoint_url,
                                                   model_name, model_uri, options, on_progress))  # fmt: skip


def _run_here(
    input_uri: str,
    output_uri: str,
    inference_service: str,
    namespace: str,
    endpoint_url: str,
    model_name: str,
    model_uri: str,
    options: JobOptions,
    on_progress: Callable[[int, int, int, int], None] | None,
) -> dict[str, Any]:
    from aiserving.steps.batch_model_server import InPodModelServer
    from aiserving.steps.batch_plan import resolve_endpoint
    from batch_jobs.aimd import AimdSettings
    from batch_jobs.runner import JobSettings, run_job

    name = model_name or inference_service
    if not name:
        raise InvalidInputError("no model name", hint="pass model_name (or inference_service, whose name it takes)")
    settings = JobSettings(
        rows_per_request=options.rows_per_request,
        error_budget=options.error_budget,
        aimd=AimdSettings(max_concurrency=options.max_concurrency, latency_tolerance=options.latency_tolerance),
    )
    with contextlib.ExitStack() as stack:
        endpoint = resolve_endpoint(inference_service, namespace, endpoint_url, model_uri)
        if not endpoint:
            endpoint = stack.enter_context(InPodModelServer(model_uri, name)).url
        return run_job(
            input_uri, output_uri, endpoint_url=endpoint, model_name=name, input_format=options.input_format,
            shard_size=options.shard_size, settings=settings, on_progress=on_progress,
        )  # fmt: skip


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
