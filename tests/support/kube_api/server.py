"""The test API server: real HTTP on 127.0.0.1, reached by the real ``kubernetes`` client.

What it implements, the way kube-apiserver does it (tests/support/kube_api/README.md has the whole list
and where it still differs):

- Namespaces (cluster-scoped; ``default``, ``kube-system``, ``kube-public``, ``kube-node-lease`` exist
  from the start) and namespaced InferenceServices, Knative Revisions, ReplicaSets, Pods, Events,
  ConfigMaps, ResourceQuotas and LimitRanges: create / get / list / replace / merge patch / delete /
  watch, and the ``status`` subresource;
- unknown fields (:mod:`field_validation`): ``fieldValidation=Strict`` answers 400 ``strict decoding
  error``, ``Warn`` (the default) and ``Ignore`` prune them, ``Warn`` with ``Warning`` headers; CRD
  schema validation of spec and status (422);
- admission (:mod:`admission`): NamespaceLifecycle, LimitRanger, PodSecurity, ResourceQuota;
- ``metadata.managedFields`` for every write (:mod:`managed_fields`), the manager from ``fieldManager``
  or the User-Agent;
- finalizers, ``propagationPolicy`` and asynchronous garbage collection (:mod:`gc`);
- field selectors limited to the labels each kind registers (``metadata.*`` only for custom resources);
- watch with ``resourceVersion`` (none or "0": synthetic ADDED events first), selectors,
  ``timeoutSeconds``, ``allowWatchBookmarks``, and an ERROR event with 410 Gone for compacted history.

Fault injection (:mod:`faults`) and a request log in RBAC terms (:mod:`request_log`) come on top.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from inference_services.versions import KServeVersion
from tests.support.kube_api.admission import default
from tests.support.kube_api.errors import ApiStatusError, bad_request
from tests.support.kube_api.faults import Fault, FaultInjector
from tests.support.kube_api.gc import GarbageCollector
from tests.support.kube_api.managed_fields import manager_from_user_agent
from tests.support.kube_api.request_log import RequestLog, RequestRecord
from tests.support.kube_api.resources import NAMESPACES
from tests.support.kube_api.routing import ApiRequest
from tests.support.kube_api.selectors import parse
from tests.support.kube_api.store import ObjectStore
from tests.support.kube_api.verbs import Verbs
from tests.support.ports import port_of, refusing_socket

_FAULT_REASONS = {403: "Forbidden", 429: "TooManyRequests", 503: "ServiceUnavailable"}
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class KubeApiServer:
    """Start with ``with KubeApiServer() as server:``; reach it with :meth:`write_kubeconfig`."""

    def __init__(self, crd_version: str = "0.20", bookmark_interval_s: float = 0.5, gc_delay_s: float = 0.3) -> None:
        self.store = ObjectStore()
        self.log = RequestLog()
        self.faults = FaultInjector()
        self.crd_version = KServeVersion.parse(crd_version)
        self.verbs = Verbs(self.store, self.crd_version)
        self.gc = GarbageCollector(self.store, delay_s=gc_delay_s)
        self.bookmark_interval_s = bookmark_interval_s
        self.stopping = threading.Event()
        for name in INITIAL_NAMESPACES:
            self.create_namespace(name)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.port = self._http.server_port
        # The kubeconfig's other cluster: a port nobody can listen on while this server runs.
        self._elsewhere = refusing_socket()
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="kube-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> KubeApiServer:
        self._thread.start()
        self.gc.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.gc.__exit__()
        self._http.shutdown()
        self._http.server_close()
        self._elsewhere.close()
        self._thread.join(timeout=5)

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a Namespace directly in the store (as a cluster admin would; not in the request log)."""
        document = default(NAMESPACES, {"metadata": {"name": name, "labels": dict(labels or {})}})
        return self.store.create(NAMESPACES, "", document, manager="kubectl-create")

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig with context ``kube-api-test`` (current) and ``other`` (an unreachable server)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "test", "cluster": {"server": self.url}},
                {"name": "elsewhere", "cluster": {"server": f"http://127.0.0.1:{port_of(self._elsewhere)}"}},
            ],
            "users": [{"name": "tester", "user": {"token": "test-token"}}],
            "contexts": [
                {"name": "kube-api-test", "context": {"cluster": "test", "user": "tester", "namespace": namespace}},
                {"name": "other", "context": {"cluster": "elsewhere", "user": "tester", "namespace": namespace}},
            ],
            "current-context": "kube-api-test",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path


def _handler_for(server: KubeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_ApiHandler):
        api = server

    return Handler


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as Go's net/http sets: headers and body go out in separate writes, and on a keep-alive
    # connection Nagle's algorithm held each response until the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    api: KubeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # -- plumbing -----------------------------------------------------------------------------------

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError as error:
            raise bad_request(f"error decoding request body: {error}") from error

    def _send_json(self, code: int, document: dict[str, Any], headers: list[tuple[str, str]]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _serve(self, method: str) -> None:
        request = ApiRequest(method, self.path)
        headers: list[tuple[str, str]] = []
        try:
            body = self._body()
            if request.kind is None:
                raise ApiStatusError(404, "NotFound", "the server could not find the requested resource")
            fault = self.api.faults.take(request.verb, request.plural, request.name)
            if fault is not None:
                self._apply_fault_before(fault, request)
                if fault.status is not None:
                    headers = [("Retry-After", fault.retry_after)] if fault.retry_after else []
                    reason = _FAULT_REASONS.get(fault.status, "InternalError")
                    raise ApiStatusError(fault.status, reason, f"injected {fault.status} {reason}")
            if request.watch:
                parse(request.kind, request.query.get("fieldSelector"), request.query.get("labelSelector"))
                # Logged when it starts: a watch can stream for minutes.
                self._log(request, 200)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client stopped watching
                    self._watch(request, fault)
                return
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            manager = request.query.get("fieldManager") or manager_from_user_agent(self.headers.get("User-Agent", ""))
            status, document, warnings = self.api.verbs.serve(method, request, body, content_type, manager)
            headers += [("Warning", warning) for warning in warnings]
        except ApiStatusError as error:
            status, document = error.code, error.status()
        # Logged before answering, so a client that reads the log after its call finds the call there.
        self._log(request, status)
        self._send_json(status, document, headers)

    def _log(self, request: ApiRequest, status: int) -> None:
        self.api.log.append(
            RequestRecord(
                request.verb, request.group, request.plural, request.subresource, request.namespace, request.name,
                status,
            )
        )  # fmt: skip

    def _apply_fault_before(self, fault: Fault, request: ApiRequest) -> None:
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.concurrent_write and request.kind is not None:
            current = self.api.store.get(request.kind, request.store_namespace, request.name)
            annotations = current["metadata"].setdefault("annotations", {})
            annotations["example.com/other-writer"] = str(fault.fired)
            self.api.store.update(request.kind, request.store_namespace, request.name, current,
                                  manager="other-writer")  # fmt: skip

    # -- watch --------------------------------------------------------------------------------------

    def _write_chunk(self, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode() + b"\n"
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _watch(self, request: ApiRequest, fault: Fault | None) -> None:
        kind = request.kind
        assert kind is not None
        store = self.api.store
        namespace = request.store_namespace if kind.namespaced else None
        selector = parse(kind, request.query.get("fieldSelector"), request.query.get("labelSelector"))
        timeout_s = float(request.query.get("timeoutSeconds") or 1800)
        bookmarks = request.query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout_s
        sent = 0
        cut_after = fault.cut_watch_after if fault is not None else None
        requested = request.query.get("resourceVersion") or "0"
        if requested == "0":
            items, revision = store.list(kind, namespace, selector)
            for item in items:
                self._write_chunk({"type": "ADDED", "object": item})
        else:
            revision = int(requested)
        last_bookmark = time.monotonic()
        while not self.api.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                events, current = store.events_after(kind, namespace, revision, min(remaining, 0.2))
            except ApiStatusError as error:
                self._write_chunk({"type": "ERROR", "object": error.status()})
                break
            for event in events:
                revision = event.resource_version
                if not selector.matches(event.object):
                    continue
                if cut_after is not None and sent >= cut_after:
                    self._cut()
                    return
                self._write_chunk({"type": event.type, "object": event.object})
                sent += 1
            revision = max(revision, current)
            if bookmarks and time.monotonic() - last_bookmark >= self.api.bookmark_interval_s:
                self._write_chunk(
                    {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": kind.kind,
                            "apiVersion": kind.api_version,
                            "metadata": {"resourceVersion": str(revision)},
                        },
                    }
                )
                last_bookmark = time.monotonic()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Drop the connection mid-stream, as a load balancer or a restarting API server does."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
