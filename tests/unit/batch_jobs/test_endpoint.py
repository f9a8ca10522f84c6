"""Which V2 endpoint a batch job calls: given, none (the job serves a model URI), or the InferenceService's."""

from __future__ import annotations

import pytest

from aiserving.pipeline_ops.catalog import compiled_path
from aiserving.pipeline_ops.compile import pipeline_inputs
from aiserving.steps.batch_plan import isvc_endpoint, resolve_endpoint
from batch_jobs.concurrency import ConcurrencySettings
from batch_jobs.settings import JobParameters, JobSettings
from serving_core.errors import InvalidInputError


def test_the_in_cluster_address_wins_over_the_external_url() -> None:
    document = {
        "metadata": {"name": "iris"},
        "status": {"url": "https://iris.example.com", "address": {"url": "http://iris.ai.svc.cluster.local"}},
    }
    assert isvc_endpoint(document) == "http://iris.ai.svc.cluster.local"
    assert isvc_endpoint({"metadata": {"name": "iris"}, "status": {"url": "https://iris.example.com"}}) == (
        "https://iris.example.com"
    )


def test_an_inference_service_without_url_is_not_ready() -> None:
    with pytest.raises(InvalidInputError, match="InferenceService iris reports no URL yet"):
        isvc_endpoint({"metadata": {"name": "iris"}, "status": {}})


def test_a_given_endpoint_or_model_uri_needs_no_lookup() -> None:
    given = JobParameters("in/", "out/", inference_service="iris", namespace="ai", endpoint_url="http://127.0.0.1:8080")
    assert resolve_endpoint(given) == "http://127.0.0.1:8080"
    in_pod = JobParameters("in/", "out/", inference_service="iris", model_uri="s3://models/iris/v1")
    assert resolve_endpoint(in_pod) == ""


def test_a_job_without_any_model_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="a batch job needs a model to call"):
        resolve_endpoint(JobParameters("in/", "out/", model_name="iris"))
    with pytest.raises(InvalidInputError, match="no model name"):
        JobParameters("in/", "out/", endpoint_url="http://127.0.0.1:8080")


def test_job_parameters_are_the_pipeline_inputs_and_give_the_shards_settings() -> None:
    parameters = JobParameters("in/", "out/", inference_service="iris", rows_per_request=128, max_concurrency=8,
                               latency_tolerance=3.0, error_budget=0.01)  # fmt: skip
    assert parameters.name == "iris"
    assert parameters.settings() == JobSettings(
        rows_per_request=128,
        error_budget=0.01,
        concurrency=ConcurrencySettings(max_concurrency=8, latency_tolerance=3.0),
    )
    inputs = pipeline_inputs(compiled_path("batch-inference"))
    assert sorted(parameters.as_arguments()) == sorted(set(inputs) - {"storage_secret"})
    with pytest.raises(InvalidInputError, match="rows per request 0 is below 1"):
        JobParameters("in/", "out/", model_name="iris", rows_per_request=0)
