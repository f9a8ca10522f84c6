"""Start pipeline runs on a Kubeflow Pipelines server: now, or on a schedule.

The same functions serve the CLI, MLOps code and n8n workflows (which call
the KFP REST API the kfp client speaks). Every argument is checked against
the compiled pipeline's inputs before any request is sent.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict

from aiserving.pipeline_ops.catalog import compiled_path
from aiserving.pipeline_ops.compile import pipeline_inputs
from serving_core.errors import (
    AiServingError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RemoteServiceError,
    UnreachableError,
)

_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-LW#]+$")
TOKEN_ENV = "KFP_TOKEN"


class SubmittedRun(BaseModel):
    """A run created on the KFP server."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    experiment_id: str
    pipeline: str
    display_name: str
    url: str


class ScheduledRun(BaseModel):
    """A recurring run created on the KFP server."""

    model_config = ConfigDict(frozen=True)

    recurring_run_id: str
    experiment_id: str
    pipeline: str
    display_name: str
    cron: str
    max_concurrency: int
    no_catchup: bool


def normalize_cron(expression: str) -> str:
    """Return a 6-field cron (seconds first), as KFP's scheduler expects.

    A standard 5-field expression gets ``0`` seconds prepended.

    Raises:
        InvalidInputError: not 5 or 6 fields, or a field with unexpected characters.
    """
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6 or not all(_CRON_FIELD.match(field) for field in fields):
        raise InvalidInputError(
            f"cron expression {expression!r} is not valid",
            hint="use 5 fields (min hour day month weekday, e.g. '0 3 * * *') "
            "or KFP's 6 fields with seconds first (e.g. '0 0 3 * * *')",
        )
    return " ".join(fields)


def check_arguments(pipeline_file: Path, arguments: dict[str, Any]) -> None:
    """Refuse arguments the pipeline does not declare.

    Raises:
        InvalidInputError: an argument names no pipeline input.
    """
    inputs = pipeline_inputs(pipeline_file)
    unknown = sorted(set(arguments) - set(inputs))
    if unknown:
        raise InvalidInputError(
            f"pipeline {pipeline_file.stem} has no parameter(s) {', '.join(unknown)}",
            hint=f"its parameters: {', '.join(sorted(inputs))}",
        )


def _check_reachable(host: str, timeout_s: float) -> None:
    url = f"{host.rstrip('/')}/apis/v2beta1/healthz"
    try:
        requests.get(url, timeout=timeout_s)
    except requests.RequestException as error:
        raise UnreachableError(
            f"Kubeflow Pipelines at {host} is unreachable (no answer within {timeout_s:g} s)",
            hint="check --host (the ml-pipeline API or the Kubeflow gateway URL) and your network path to it",
        ) from error


@contextlib.contextmanager
def _kfp_errors(host: str) -> Iterator[None]:
    # The kfp client prints links to stdout; keep stdout for our JSON.
    from kfp_server_api.exceptions import ApiException

    with contextlib.redirect_stdout(sys.stderr):
        try:
            yield
        except ApiException as error:
            raise _translate(error, host) from error


def _translate(error: Any, host: str) -> AiServingError:
    status = int(getattr(error, "status", 0) or 0)
    detail = (getattr(error, "body", None) or getattr(error, "reason", "") or "").strip()
    if status in (401, 403):
        return PermissionDeniedError(
            f"Kubeflow Pipelines at {host} refused the request ({status}): {detail}",
            hint=f"pass a token in ${TOKEN_ENV} or run where the kubeconfig/profile grants access",
        )
    if status == 404:
        return NotFoundError(f"Kubeflow Pipelines at {host} answered 404: {detail}")
    if status in (400, 422):
        return InvalidInputError(f"Kubeflow Pipelines rejected the request ({status}): {detail}")
    return RemoteServiceError(
        f"Kubeflow Pipelines at {host} failed ({status or 'no status'}): {detail}",
        retryable=status == 429 or status >= 500,
    )


def _client(host: str, namespace: str | None, timeout_s: float) -> Any:
    import kfp

    _check_reachable(host, timeout_s)
    # An explicit namespace keeps the client from probing healthz with its own retry loop.
    return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=os.environ.get(TOKEN_ENV))


def submit_run(
    pipeline: str,
    host: str,
    arguments: dict[str, Any],
    experiment: str = "Default",
    run_name: str | None = None,
    namespace: str | None = None,
    timeout_s: float = 10.0,
) -> SubmittedRun:
    """Create a run of a compiled pipeline (name or YAML path) on the KFP server."""
    pipeline_file = compiled_path(pipeline)
    check_arguments(pipeline_file, arguments)
    display_name = run_name or f"{pipeline_file.stem}"
    with _kfp_errors(host):
        client = _client(host, namespace, timeout_s)
        result = client.create_run_from_pipeline_package(
            str(pipeline_file), arguments=arguments, run_name=display_name, experiment_name=experiment,
            namespace=namespace,
        )  # fmt: skip
        run = result.run_info
    return SubmittedRun(
        run_id=run.run_id,
        experiment_id=run.experiment_id or "",
        pipeline=pipeline_file.stem,
        display_name=run.display_name or display_name,
        url=f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
    )


def schedule_run(
    pipeline: str,
    host: str,
    cron: str,
    arguments: dict[str, Any],
    experiment: str = "Default",
    name: str | None = None,
    namespace: str | None = None,
    timeout_s: float = 10.0,
) -> ScheduledRun:
    """Create a recurring run: at most one run at a time, no catch-up of missed slots."""
    pipeline_file = compiled_path(pipeline)
    check_arguments(pipeline_file, arguments)
    kfp_cron = normalize_cron(cron)
    display_name = name or f"{pipeline_file.stem}-schedule"
    with _kfp_errors(host):
        client = _client(host, namespace, timeout_s)
        experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
        recurring = client.create_recurring_run(
            experiment_id=experiment_id, job_name=display_name, cron_expression=kfp_cron, max_concurrency=1,
            no_catchup=True, params=arguments, pipeline_package_path=str(pipeline_file),
        )  # fmt: skip
    return ScheduledRun(
        recurring_run_id=recurring.recurring_run_id,
        experiment_id=experiment_id,
        pipeline=pipeline_file.stem,
        display_name=display_name,
        cron=kfp_cron,
        max_concurrency=1,
        no_catchup=True,
    )


def run_state(host: str, run_id: str, namespace: str | None = None, timeout_s: float = 10.0) -> str:
    """The state of run ``run_id`` on the KFP server (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, ...)."""
    with _kfp_errors(host):
        run = _client(host, namespace, timeout_s).get_run(run_id)
    return str(getattr(run, "state", "") or "")


def terminate_run(host: str, run_id: str, namespace: str | None = None, timeout_s: float = 10.0) -> None:
    """Ask the KFP server to terminate run ``run_id`` (its pods are stopped)."""
    with _kfp_errors(host):
        _client(host, namespace, timeout_s).terminate_run(run_id)
