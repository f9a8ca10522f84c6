"""Pod events in plain words; Retry-After and backoff in the retry loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from kubernetes.client.exceptions import ApiException

from inference_services.events import plain_event
from inference_services.retry import RetryPolicy, call_with_retries, retry_after_s
from serving_core.errors import InvalidInputError, RemoteServiceError


def api_error(status: int, retry_after: str | None = None) -> ApiException:
    error = ApiException(status=status, reason="test")
    error.headers = {"Retry-After": retry_after} if retry_after else {}
    error.body = '{"message": "the message from the server"}'
    return error


def test_scheduling_failures_become_sentences() -> None:
    message = (
        "0/5 nodes are available: 3 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node "
        "affinity/selector, 1 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/5 nodes are "
        "available: 5 Preemption is not helpful for scheduling."
    )
    assert plain_event("FailedScheduling", message) == (
        "the predictor pod cannot be scheduled: 3 of 5 nodes have no free NVIDIA GPU (nvidia.com/gpu) (free or add "
        "GPUs of that kind, or ask for fewer); 1 of 5 nodes do not match the GPU node affinity (check the "
        "gpu.products / gpu.min_memory_mib labels the config asks for); 1 of 5 nodes carry a taint the pod does not "
        "tolerate (nvidia.com/gpu: present; add a matching entry to the config's tolerations)."
    )


def test_mig_and_image_pull_events() -> None:
    assert "no free MIG slice 1g.10gb (nvidia.com/mig-1g.10gb)" in plain_event(
        "FailedScheduling", "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.10gb."
    )
    assert plain_event("ErrImagePull", "rpc error: not found").startswith("the predictor image cannot be pulled")
    assert plain_event("Unhealthy", "Readiness probe failed") == "Unhealthy: Readiness probe failed"


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert retry_after_s(api_error(429, "3")) == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_s(api_error(503, later)) or 0) <= 30
    assert retry_after_s(api_error(503)) is None


def test_retries_honour_retry_after_then_succeed() -> None:
    waits: list[float] = []
    answers: list[ApiException | str] = [api_error(429, "2"), api_error(503), "done"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, ApiException):
            raise answer
        return answer

    policy = RetryPolicy(attempts=5, base_delay_s=0.1, sleep=waits.append)
    assert call_with_retries(call, action="read it", policy=policy) == "done"
    assert waits[0] == 2.0
    assert 0.05 <= waits[1] <= 0.2


def test_retries_stop_at_the_budget_and_4xx_is_not_retried() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, base_delay_s=0.01, sleep=waits.append)

    def failing(status: int) -> None:
        raise api_error(status)

    with pytest.raises(RemoteServiceError, match="failed to update it: HTTP 500") as caught:
        call_with_retries(lambda: failing(500), action="update it", policy=policy)
    assert caught.value.retryable
    assert len(waits) == 2
    with pytest.raises(InvalidInputError, match="the API server refused to create it: the message from the server"):
        call_with_retries(lambda: failing(422), action="create it", policy=policy)
    assert len(waits) == 2
