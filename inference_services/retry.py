"""Retry API calls on 429 and 5xx with exponential backoff, honouring ``Retry-After``."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from inference_services.kube_errors import RETRYABLE_STATUSES, translate
from serving_core.errors import UnreachableError
from serving_core.retry_after import retry_after_seconds

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one API call."""

    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    request_timeout_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds for one call; the kubernetes client ignores a plain float."""
        return (self.request_timeout_s, self.request_timeout_s)

    def backoff_s(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the given 1-based attempt."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def retry_after_s(error: ApiException) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` as seconds or an HTTP date), if any."""
    headers = error.headers or {}
    return retry_after_seconds(headers.get("Retry-After") if hasattr(headers, "get") else None)


def call_with_retries(call: Callable[[], T], *, action: str, policy: RetryPolicy) -> T:
    """Run ``call``; on 429/5xx or a broken connection wait and try again, up to ``policy.attempts``.

    Raises:
        AiServingError: the translated API error (see :mod:`inference_services.kube_errors`), or
            UnreachableError when the API server cannot be reached.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except ApiException as error:
            if error.status not in RETRYABLE_STATUSES or attempt >= policy.attempts:
                raise translate(error, action) from error
            delay = retry_after_s(error)
            delay = policy.backoff_s(attempt) if delay is None else min(delay, policy.max_delay_s)
            log.info("%s: HTTP %s, retrying in %.2f s (attempt %d)", action, error.status, delay, attempt)
        except urllib3.exceptions.HTTPError as error:
            if attempt >= policy.attempts:
                raise UnreachableError(
                    f"cannot {action}: the Kubernetes API server is unreachable ({error})",
                    hint="check the kubeconfig, --context and network access to the cluster",
                ) from error
            delay = policy.backoff_s(attempt)
            log.info("%s: %s, retrying in %.2f s (attempt %d)", action, type(error).__name__, delay, attempt)
        policy.sleep(delay)
