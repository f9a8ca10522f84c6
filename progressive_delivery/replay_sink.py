"""The shadow stage's replay sink: receives KServe's payload-logger CloudEvents and replays requests to the canary.

KServe's InferenceService ``logger`` (``kserve/kserve`` ``pkg/logger/handler.go`` and ``worker.go``) posts
every request, and every response answered with 200, as a CloudEvent in HTTP binary mode: the body is
the payload, ``Content-Type`` the request's, and the attributes are headers ``Ce-Specversion`` (1.0),
``Ce-Id`` (the request's ``Ce-Id`` header or a UUID, the same for request and response), ``Ce-Type``
(``org.kubeflow.serving.inference.request`` / ``.response``), ``Ce-Source``, ``Ce-Time`` and the
extensions ``Ce-Inferenceservicename``, ``Ce-Namespace``, ``Ce-Component``, ``Ce-Endpoint``,
``Ce-Metadata`` (JSON) and optionally ``Ce-Annotations``. Point the stable predictor's
``spec.predictor.logger.url`` at this sink (docs/progressive-delivery.md, "Shadow stage").

The sink pairs request and response by ``Ce-Id``, replays the request to the canary (and, when a stable
URL is given, to stable too, for a like-for-like latency comparison), compares the canary's answer with
the answer stable gave the user (:mod:`progressive_delivery.shadow_compare`) and exports the counts:

- ``GET /metrics`` (Prometheus): ``shadow_pairs_total{inferenceservice,namespace,result}``,
  ``shadow_replay_duration_seconds{inferenceservice,namespace,arm}``, ``shadow_dropped_total{reason}``,
  ``shadow_events_total{type}``, ``shadow_ignored_events_total{reason}``;
- ``GET /summary``: the same counts as JSON; ``GET /healthz``.

Canary answers go nowhere but the comparison: the sink answers KServe's logger with 200 and an empty body.
Work is bounded: a full replay queue drops the pair and counts it (``queue_full``), and pairs waiting for
their other half are bounded in number and age (``pending_full``, ``unpaired``). Replays carry
``Ce-Id: shadow-<id>``; KServe's logger reuses that id, so if the canary logs to this sink too its events
are recognised and ignored instead of being replayed again.

Run it: ``python -m progressive_delivery.replay_sink --canary-url http://iris-predictor-canary.ns``.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import requests
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from progressive_delivery.shadow_compare import Comparison, compare_answers, inference_protocol
from serving_core.errors import InvalidInputError

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
REPLAY_ID_PREFIX = "shadow-"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SinkSettings:
    """What the sink replays to and how much it holds.

    Attributes:
        canary_url: the canary predictor's base URL (``http://host[:port]``); the path follows the
            request's protocol: ``/v1/models/{model}:predict`` or ``/v2/models/{model}/infer``.
        model_name: the model name in those paths (default: the event's InferenceService name).
        stable_url: optional stable base URL, replayed too for the latency comparison.
        inference_service: replay only events of this InferenceService (default: all).
        namespace: replay only events from this namespace (default: all).
        queue_size: pairs waiting for a replay worker before new ones are dropped.
        workers: concurrent replays.
        max_pending: half-received pairs held before the oldest is dropped.
        pair_timeout_seconds: how long a request waits for its response (only 200s are logged).
        replay_timeout_seconds: per replay.
        tolerance: relative tolerance for numeric answers.
    """

    canary_url: str
    model_name: str | None = None
    stable_url: str | None = None
    inference_service: str | None = None
    namespace: str | None = None
    queue_size: int = 1000
    workers: int = 4
    max_pending: int = 10000
    pair_timeout_seconds: float = 30.0
    replay_timeout_seconds: float = 10.0
    tolerance: float = 1e-6

    def __post_init__(self) -> None:
        """Check the URLs and bounds before anything starts."""
        for name, url in (("canary_url", self.canary_url), ("stable_url", self.stable_url)):
            if url is not None and not url.startswith(("http://", "https://")):
                raise InvalidInputError(f"{name} {url!r} is not an http(s) URL", hint="e.g. http://iris-canary.ns")
        if min(self.queue_size, self.workers, self.max_pending) < 1:
            raise InvalidInputError("queue_size, workers and max_pending must be at least 1")


@dataclass
class _Pending:
    received_at: float
    request: bytes | None = None
    response: bytes | None = None
    content_type: str = "application/json"
    inference_service: str = ""
    namespace: str = ""


class _SinkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pairs = Counter(
            "shadow_pairs",
            "Replayed requests by how the canary's answer compared with stable's",
            ["inferenceservice", "namespace", "result"],
            registry=registry,
        )
        self.duration = Histogram(
            "shadow_replay_duration_seconds",
            "Replay latency by arm (stable only when a stable URL is set)",
            ["inferenceservice", "namespace", "arm"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.dropped = Counter(
            "shadow_dropped", "Pairs not replayed: queue_full, pending_full, unpaired", ["reason"], registry=registry
        )
        self.events = Counter("shadow_events", "CloudEvents received, by ce-type", ["type"], registry=registry)
        self._prepared: set[tuple[str, str]] = set()
        self.ignored = Counter(
            "shadow_ignored_events",
            "Events not replayed: other_service, other_namespace, replayed (the sink's own), invalid",
            ["reason"],
            registry=registry,
        )

    def prepare(self, service: str, namespace: str) -> None:
        """Create a service's series at zero, so that ``increase()`` counts its first pairs too.

        Prometheus cannot see what a counter held before its first scrape: a series born at 35 would
        lose those 35 from every window.
        """
        if (service, namespace) in self._prepared:
            return
        self._prepared.add((service, namespace))
        for result in Comparison:
            self.pairs.labels(service, namespace, result.value)
        for arm in ("canary", "stable"):
            self.duration.labels(service, namespace, arm)


class ReplaySink:
    """The sink as a server on ``host:port`` (port 0: the kernel picks; :attr:`url` says which)."""

    def __init__(self, settings: SinkSettings, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepare the sink; nothing listens before :meth:`start`."""
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = _SinkMetrics(self.registry)
        self._address = (host, port)
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, _Pending] | None] = queue.Queue(maxsize=settings.queue_size)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._counts: dict[str, int] = {}
        if settings.inference_service is not None and settings.namespace is not None:
            self.metrics.prepare(settings.inference_service, settings.namespace)

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        if self._server is None:
            raise InvalidInputError("the replay sink is not started", hint="call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Listen and start the replay workers."""
        self._server = _SinkServer(self._address, _Handler)
        self._server.sink = self
        self._threads = [threading.Thread(target=self._serve, name="replay-sink-http", daemon=True)]
        self._threads += [
            threading.Thread(target=self._replay_loop, name=f"replay-{n}", daemon=True)
            for n in range(self.settings.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, let workers finish the replay in hand, and return."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        for _ in range(self.settings.workers):
            self._queue.put(None)  # blocks only while workers drain a full queue
        for thread in self._threads:
            thread.join(timeout=self.settings.replay_timeout_seconds + 5)
        self._server = None

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop on leaving it."""
        self.stop()

    def summary(self) -> dict[str, Any]:
        """Counts as JSON: pairs by result, agreement, drops, pending pairs."""
        with self._lock:
            counts = dict(self._counts)
            pending = len(self._pending)
        compared = counts.get(Comparison.AGREE, 0) + counts.get(Comparison.DISAGREE, 0)
        return {
            "pairs": {result.value: counts.get(result, 0) for result in Comparison},
            "agreement": counts.get(Comparison.AGREE, 0) / compared if compared else None,
            "dropped": {
                reason: counts.get(f"dropped:{reason}", 0) for reason in ("queue_full", "pending_full", "unpaired")
            },
            "pending": pending,
            "queued": self._queue.qsize(),
        }

    def _serve(self) -> None:
        assert self._server is not None
        self._server.serve_forever(poll_interval=0.2)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def _drop(self, reason: str) -> None:
        self.metrics.dropped.labels(reason).inc()
        self._count(f"dropped:{reason}")

    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """Take one CloudEvent (headers lower-cased); the HTTP status and a short message for the logger."""
        event_type, event_id = headers.get("ce-type", ""), headers.get("ce-id", "")
        if headers.get("ce-specversion") != "1.0" or not event_id or event_type not in (REQUEST_TYPE, RESPONSE_TYPE):
            self.metrics.ignored.labels("invalid").inc()
            return 400, "expected a binary-mode CloudEvent 1.0 of type org.kubeflow.serving.inference.request|response"
        self.metrics.events.labels(event_type).inc()
        service, namespace = headers.get("ce-inferenceservicename", ""), headers.get("ce-namespace", "")
        reason = None
        if event_id.startswith(REPLAY_ID_PREFIX):
            reason = "replayed"
        elif self.settings.inference_service is not None and service != self.settings.inference_service:
            reason = "other_service"
        elif self.settings.namespace is not None and namespace != self.settings.namespace:
            reason = "other_namespace"
        if reason is not None:
            self.metrics.ignored.labels(reason).inc()
            return 200, f"ignored: {reason}"
        self.metrics.prepare(service, namespace)
        ready = self._pair(event_id, event_type, headers, body, service, namespace)
        if ready is not None:
            try:
                self._queue.put_nowait((event_id, ready))
            except queue.Full:
                self._drop("queue_full")
        return 200, "accepted"

    def _pair(
        self, event_id: str, event_type: str, headers: dict[str, str], body: bytes, service: str, namespace: str
    ) -> _Pending | None:
        """Store one half; the complete pair when this was the second half."""
        now = time.monotonic()
        expired = 0
        with self._lock:
            while self._pending:
                oldest_id, oldest = next(iter(self._pending.items()))
                if now - oldest.received_at <= self.settings.pair_timeout_seconds:
                    break
                del self._pending[oldest_id]
                expired += 1
            pending = self._pending.get(event_id)
            full = pending is None and len(self._pending) >= self.settings.max_pending
            if full:
                self._pending.popitem(last=False)
            if pending is None:
                pending = self._pending[event_id] = _Pending(now, inference_service=service, namespace=namespace)
            if event_type == REQUEST_TYPE:
                pending.request = body
                pending.content_type = headers.get("content-type") or pending.content_type
            else:
                pending.response = body
            complete = pending.request is not None and pending.response is not None
            if complete:
                del self._pending[event_id]
        for _ in range(expired):
            self._drop("unpaired")
        if full:
            self._drop("pending_full")
        return pending if complete else None

    def _replay_loop(self) -> None:
        session = requests.Session()
        while (job := self._queue.get()) is not None:
            event_id, pair = job
            result = self._replay(session, event_id, pair)
            self.metrics.pairs.labels(pair.inference_service, pair.namespace, result.value).inc()
            self._count(result)

    def _target(self, base_url: str, pair: _Pending, body: bytes) -> str | None:
        protocol = inference_protocol(body)
        model = self.settings.model_name or pair.inference_service
        if protocol is None or not model:
            return None
        path = f"/v2/models/{model}/infer" if protocol == "v2" else f"/v1/models/{model}:predict"
        return base_url.rstrip("/") + path

    def _replay(self, session: requests.Session, event_id: str, pair: _Pending) -> Comparison:
        assert pair.request is not None
        assert pair.response is not None
        canary_url = self._target(self.settings.canary_url, pair, pair.request)
        if canary_url is None:
            return Comparison.INCOMPARABLE
        headers = {"Content-Type": pair.content_type, "Ce-Id": f"{REPLAY_ID_PREFIX}{event_id}"}
        if self.settings.stable_url is not None:
            stable_url = self._target(self.settings.stable_url, pair, pair.request)
            self._timed_post(session, pair, "stable", stable_url or "", headers)
        answer = self._timed_post(session, pair, "canary", canary_url, headers)
        if answer is None or answer.status_code != 200:
            return Comparison.CANARY_ERROR
        return compare_answers(pair.response, answer.content, tolerance=self.settings.tolerance)

    def _timed_post(
        self, session: requests.Session, pair: _Pending, arm: str, url: str, headers: dict[str, str]
    ) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = session.post(
                url, data=pair.request, headers=headers, timeout=self.settings.replay_timeout_seconds
            )
        except requests.RequestException:
            return None
        elapsed = time.perf_counter() - started
        self.metrics.duration.labels(pair.inference_service, pair.namespace, arm).observe(elapsed)
        return response


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    sink: ReplaySink


class _Handler(BaseHTTPRequestHandler):
    server: _SinkServer
    protocol_version = "HTTP/1.1"

    @property
    def owner(self) -> ReplaySink:
        return self.server.sink

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: KServe's logger posts every request; counts are in /metrics."""

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """A CloudEvent from KServe's logger."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            self._answer(413, b"payload too large")
            return
        body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, message = self.owner.receive(headers, body)
        self._answer(status, message.encode())

    def do_GET(self) -> None:
        """``/metrics``, ``/summary`` or ``/healthz``."""
        if self.path == "/metrics":
            self._answer(200, generate_latest(self.owner.registry), CONTENT_TYPE_LATEST)
        elif self.path == "/summary":
            self._answer(200, json.dumps(self.owner.summary()).encode(), "application/json")
        elif self.path == "/healthz":
            self._answer(200, b"ok")
        else:
            self._answer(404, b"not found: POST CloudEvents to any path; GET /metrics, /summary, /healthz")


def parse_args(argv: Sequence[str] | None = None) -> tuple[SinkSettings, str, int, Path | None]:
    """Settings, host, port and port file from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m progressive_delivery.replay_sink",
        description="Receive KServe logger CloudEvents, replay requests to the canary, export agreement metrics.",
    )
    parser.add_argument("--canary-url", required=True, help="canary predictor base URL, e.g. http://iris-canary.ns")
    parser.add_argument("--stable-url", help="stable predictor base URL (replayed too, for latency)")
    parser.add_argument("--model-name", help="model name in the inference path (default: the InferenceService name)")
    parser.add_argument("--inference-service", help="replay only this InferenceService's events")
    parser.add_argument("--namespace", help="replay only events from this namespace")
    parser.add_argument("--host", default="0.0.0.0")  # a cluster Service reaches it
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--port-file", type=Path, help='write {"http": port} here once listening (tests)')
    parser.add_argument("--queue-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tolerance", type=float, default=1e-6, help="relative tolerance for numeric answers")
    args = parser.parse_args(argv)
    settings = SinkSettings(
        canary_url=args.canary_url,
        stable_url=args.stable_url,
        model_name=args.model_name,
        inference_service=args.inference_service,
        namespace=args.namespace,
        queue_size=args.queue_size,
        workers=args.workers,
        tolerance=args.tolerance,
    )
    return settings, args.host, args.port, args.port_file


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sink until SIGTERM / Ctrl-C."""
    import signal

    settings, host, port, port_file = parse_args(argv)
    sink = ReplaySink(settings, host=host, port=port).start()
    if port_file is not None:
        port_file.write_text(json.dumps({"http": int(sink.url.rsplit(":", 1)[1])}), encoding="utf-8")
    print(f"replay sink listening on {sink.url}, replaying to {settings.canary_url}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
