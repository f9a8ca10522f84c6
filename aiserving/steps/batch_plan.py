"""Step: check a batch job's inputs and write its shard plan (component plan-batch-job)."""

from __future__ import annotations

import logging
from typing import Any

from batch_jobs.settings import JobParameters
from serving_core.errors import InvalidInputError

log = logging.getLogger(__name__)


def isvc_endpoint(document: dict[str, Any]) -> str:
    """The base URL to call an InferenceService at: its in-cluster address, else its external URL.

    Raises:
        InvalidInputError: the InferenceService reports no URL yet (not ready).
    """
    status = document.get("status") or {}
    url = str((status.get("address") or {}).get("url") or status.get("url") or "")
    if not url:
        name = document.get("metadata", {}).get("name", "")
        raise InvalidInputError(
            f"InferenceService {name} reports no URL yet", hint="wait until it is ready, or pass endpoint_url"
        )
    return url


def resolve_endpoint(parameters: JobParameters) -> str:
    """The V2 endpoint the shards call: ``endpoint_url``, none with ``model_uri``, else the InferenceService's.

    Raises:
        InvalidInputError: none of the three is given.
        NotFoundError: the InferenceService does not exist.
    """
    if parameters.endpoint_url:
        return parameters.endpoint_url
    if parameters.model_uri:
        return ""
    if not parameters.inference_service:
        raise InvalidInputError(
            "a batch job needs a model to call", hint="pass inference_service, endpoint_url or model_uri"
        )
    from inference_services.connection import connect
    from inference_services.isvc_api import InferenceServiceApi

    api = InferenceServiceApi(connect(), parameters.namespace)
    return isvc_endpoint(api.get(parameters.inference_service))


def plan_batch_step(parameters: JobParameters) -> list[int]:
    """Find the model, check everything and write the manifest; nothing is written when a check fails.

    Returns:
        The shard indexes.

    Raises:
        InvalidInputError, NotFoundError, PermissionDeniedError, UnreachableError: see
            :func:`batch_jobs.runner.plan_job`.
    """
    from batch_jobs.runner import plan_job

    endpoint = resolve_endpoint(parameters)
    job = plan_job(
        parameters.input_uri, parameters.output_uri, endpoint_url=endpoint, model_name=parameters.name,
        input_format=parameters.input_format, shard_size=parameters.shard_size,
    )  # fmt: skip
    job.output.record_model(endpoint, parameters.model_uri)
    log.info("%d shards, %d done already", len(job.plan.shards), len(job.output.done_shards()))
    return [shard.index for shard in job.plan.shards]
