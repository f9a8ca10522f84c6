"""Post inference payloads to a sink exactly as KServe's payload logger does (kserve/kserve pkg/logger).

``handler.go`` queues the request (and, for a 200 answer, the response) with the same id: the caller's
``Ce-Id`` header or a new UUID, and the request's ``Content-Type`` for both. ``worker.go`` sends each with
the CloudEvents Go SDK in binary mode: ``Ce-Specversion: 1.0``, ``Ce-Id``, ``Ce-Type``
(``org.kubeflow.serving.inference.request|response``), ``Ce-Source`` (the agent's ``--source-uri``,
default ``http://localhost:9081/``), ``Ce-Time`` (``WithTimeNow``) and the extensions
``Ce-Inferenceservicename``, ``Ce-Namespace``, ``Ce-Component``, ``Ce-Endpoint`` and ``Ce-Metadata`` (the
allow-listed request headers as JSON, ``{}`` by default); the body is the payload, unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


@dataclass(frozen=True)
class LoggerIdentity:
    """The agent's flags: what every event of one predictor carries."""

    inference_service: str
    namespace: str
    component: str = "predictor"
    endpoint: str = ""
    source: str = "http://localhost:9081/"


def event_headers(identity: LoggerIdentity, event_type: str, event_id: str, content_type: str) -> dict[str, str]:
    """The HTTP headers of one binary-mode CloudEvent, spelled as Go's net/http canonicalises them."""
    return {
        "Ce-Specversion": "1.0",
        "Ce-Id": event_id,
        "Ce-Source": identity.source,
        "Ce-Type": event_type,
        "Ce-Time": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "Ce-Inferenceservicename": identity.inference_service,
        "Ce-Namespace": identity.namespace,
        "Ce-Component": identity.component,
        "Ce-Endpoint": identity.endpoint,
        "Ce-Metadata": "{}",
        "Content-Type": content_type,
    }


def log_exchange(
    session: requests.Session,
    sink_url: str,
    identity: LoggerIdentity,
    request_body: bytes,
    response_body: bytes,
    *,
    event_id: str | None = None,
    content_type: str = "application/json",
    response_first: bool = False,
) -> list[int]:
    """Post the request and response events (workers may deliver them in either order); their HTTP statuses."""
    event_id = event_id or str(uuid.uuid4())
    events = [(REQUEST, request_body), (RESPONSE, response_body)]
    if response_first:
        events.reverse()
    return [
        session.post(
            sink_url, data=body, headers=event_headers(identity, kind, event_id, content_type), timeout=10
        ).status_code
        for kind, body in events
    ]
