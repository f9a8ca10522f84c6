"""Which V2 endpoint a batch job calls: given, none (the job serves a model URI), or the InferenceService's."""

from __future__ import annotations

import pytest

from aiserving.steps.batch_plan import isvc_endpoint, resolve_endpoint
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
    assert resolve_endpoint("iris", "ai", "http://127.0.0.1:8080", "") == "http://127.0.0.1:8080"
    assert resolve_endpoint("iris", "ai", "", "s3://models/iris/v1") == ""


def test_a_job_without_any_model_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="a batch job needs a model to call"):
        resolve_endpoint("", "ai", "", "")
