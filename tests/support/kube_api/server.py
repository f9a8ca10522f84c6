"""The test API server: real HTTP on 127.0.0.1, reached by the real ``kubernetes`` client.

What it implements, the way kube-apiserver does it:
- namespaced create / get / list / replace (PUT) / JSON merge patch / delete for InferenceServices, Pods,
  Events and ConfigMaps; the ``status`` subresource of InferenceServices;
- 404 for missing objects; 409 ``AlreadyExists`` on create and ``Conflict`` on a stale
  ``metadata.resourceVersion`` (PUT, or a merge patch that carries one); 422 for a PUT of an
  InferenceService without a resourceVersion and for objects that fail KServe's CRD schema
  (strict unknown-field rejection with ``fieldValidation=Strict``, type/enum checks always);
- ``metadata.generation`` bumped on spec changes only, ``status`` ignored on main-resource writes;
- watch with ``resourceVersion`` (none or "0": synthetic ADDED events first), field and label
  selectors, ``timeoutSeconds``, ``allowWatchBookmarks`` (BOOKMARK events), and an ERROR event with
  410 Gone when the resourceVersion is older than the kept history (:meth:`ObjectStore.compact`);
- owner-reference garbage collection on delete.
Fault injection (:mod:`faults`) and a request log in RBAC terms (:mod:`request_log`) come on top.
Known simplification: without ``fieldValidation=Strict`` unknown fields are kept, not pruned.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from inference_services.crd_validation import schema_errors
from inference_services.versions import KServeVersion
from tests.support.kube_api.errors import ApiStatusError, invalid
from tests.support.kube_api.faults import Fault, FaultInjector
from tests.support.kube_api.merge_patch import apply_merge_patch
from tests.support.kube_api.request_log import RequestLog, RequestRecord
from tests.support.kube_api.resources import BY_PATH, INFERENCE_SERVICES, ResourceType
from tests.support.kube_api.store import ObjectStore, matches, selector_dict
from tests.support.ports import port_of, refusing_socket

_PATH = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<subresource>[^/]+))?$"
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FAULT_REASONS = {403: "Forbidden", 429: "TooManyRequests", 503: "ServiceUnavailable"}
_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class _Request:
    """A parsed API path and query."""

    def __init__(self, method: str, raw_path: str) -> None:
        parts = urlsplit(raw_path)
        self.query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        match = _PATH.match(parts.path)
        self.kind: ResourceType | None = None
        self.namespace = self.name = self.subresource = ""
        self.group = self.plural = ""
        if match:
            self.group = match["group"] or ""
            version = match["core_version"] or match["version"]
            self.plural = match["plural"]
            self.kind = BY_PATH.get((self.group, version, self.plural))
            self.namespace = match["namespace"]
            self.name = match["name"] or ""
            self.subresource = match["subresource"] or ""
        self.watch = self.query.get("watch", "").lower() in ("true", "1")
        self.verb = self._verb(method)

    def _verb(self, method: str) -> str:
        if method == "GET":
            return "watch" if self.watch else ("get" if self.name else "list")
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
            method, "delete" if self.name else "deletecollection"
        )


class KubeApiServer:
    """Start with ``with KubeApiServer() as server:``; reach it with :meth:`write_kubeconfig`."""

    def __init__(self, crd_version: str = "0.20", bookmark_interval_s: float = 0.5) -> None:
        self.store = ObjectStore()
        self.log = RequestLog()
        self.faults = FaultInjector()
        self.crd_version = KServeVersion.parse(crd_version)
        self.bookmark_interval_s = bookmark_interval_s
        self.stopping = threading.Event()
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
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._http.shutdown()
        self._http.server_close()
        self._elsewhere.close()
        self._thread.join(timeout=5)

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

    def validate(self, kind: ResourceType, document: dict[str, Any], strict: bool) -> None:
        """422 for objects the real CRD schema (or name rules) would reject."""
        name = str(document.get("metadata", {}).get("name", ""))
        if kind == INFERENCE_SERVICES:
            problems = schema_errors(document, self.crd_version, strict=strict)
            if not _ISVC_NAME.match(name):
                problems.append(f"metadata.name: {name!r} must start with a letter and hold only a-z, 0-9 and '-'")
            if problems:
                raise invalid(f"{kind.kind}.{kind.group}", name, problems)
        elif not _DNS_LABEL.match(name.replace(".", "-")):
            raise invalid(kind.kind, name, [f"metadata.name: {name!r} is not a valid DNS-1123 name"])


def _handler_for(server: KubeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_ApiHandler):
        api = server

    return Handler


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
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
        return json.loads(self.rfile.read(length)) if length else None

    def _send_json(self, code: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _serve(self, method: str) -> None:
        request = _Request(method, self.path)
        body = self._body() if method in ("POST", "PUT", "PATCH") else None
        headers: dict[str, str] = {}
        try:
            if request.kind is None:
                raise ApiStatusError(404, "NotFound", f"the server could not find the requested resource {self.path}")
            fault = self.api.faults.take(request.verb, request.plural, request.name)
            if fault is not None:
                self._apply_fault_before(fault, request)
                if fault.status is not None:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    reason = _FAULT_REASONS.get(fault.status, "InternalError")
                    raise ApiStatusError(fault.status, reason, f"injected {fault.status} {reason}")
            if request.watch:
                # Logged when it starts: a watch can stream for minutes.
                self._log(request, 200)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client stopped watching
                    self._watch(request, fault)
                return
            status, document = self._dispatch(method, request, body)
        except ApiStatusError as error:
            status, document = error.code, error.status()
        # Logged before answering, so a client that reads the log after its call finds the call there.
        self._log(request, status)
        self._send_json(status, document, headers)

    def _log(self, request: _Request, status: int) -> None:
        self.api.log.append(
            RequestRecord(
                request.verb, request.group, request.plural, request.subresource, request.namespace, request.name,
                status,
            )
        )  # fmt: skip

    def _apply_fault_before(self, fault: Fault, request: _Request) -> None:
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.concurrent_write and request.kind is not None:
            current = self.api.store.get(request.kind, request.namespace, request.name)
            annotations = current["metadata"].setdefault("annotations", {})
            annotations["example.com/other-writer"] = str(fault.fired)
            self.api.store.update(request.kind, request.namespace, request.name, current)

    # -- verbs --------------------------------------------------------------------------------------

    def _dispatch(self, method: str, request: _Request, body: Any) -> tuple[int, dict[str, Any]]:
        kind = request.kind
        assert kind is not None
        store = self.api.store
        strict = request.query.get("fieldValidation") == "Strict"
        status_only = request.subresource == "status"
        if method == "GET" and request.name:
            return 200, store.get(kind, request.namespace, request.name)
        if method == "GET":
            items, revision = store.list(
                kind,
                request.namespace,
                selector_dict(request.query.get("fieldSelector")),
                selector_dict(request.query.get("labelSelector")),
            )
            return 200, {
                "apiVersion": kind.api_version,
                "kind": kind.list_kind,
                "metadata": {"resourceVersion": str(revision)},
                "items": items,
            }
        if method == "POST":
            if not isinstance(body, dict):
                raise ApiStatusError(400, "BadRequest", "the request body must be a JSON object")
            self.api.validate(kind, body, strict)
            return 201, store.create(kind, request.namespace, body)
        if method == "PUT":
            return 200, self._replace(request, body, strict, status_only)
        if method == "PATCH":
            return 200, self._merge_patch(request, body, strict, status_only)
        if method == "DELETE":
            return 200, store.delete(kind, request.namespace, request.name)
        raise ApiStatusError(405, "MethodNotAllowed", f"{method} is not supported")

    def _replace(self, request: _Request, body: Any, strict: bool, status_only: bool) -> dict[str, Any]:
        kind = request.kind
        assert kind is not None
        if not isinstance(body, dict) or body.get("metadata", {}).get("name") != request.name:
            raise ApiStatusError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if kind.tracks_generation and not body["metadata"].get("resourceVersion"):
            raise invalid(
                f"{kind.kind}.{kind.group}",
                request.name,
                ["metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"],
            )
        if not status_only:
            self.api.validate(kind, body, strict)
        return self.api.store.update(
            kind, request.namespace, request.name, body, status_only=status_only, require_resource_version=False
        )

    def _merge_patch(self, request: _Request, body: Any, strict: bool, status_only: bool) -> dict[str, Any]:
        kind = request.kind
        assert kind is not None
        content_type = (self.headers.get("Content-Type") or "").split(";")[0]
        if content_type != "application/merge-patch+json":
            raise ApiStatusError(
                415, "UnsupportedMediaType", f"the body of the request was in an unknown format ({content_type})"
            )
        precondition = (body or {}).get("metadata", {}).get("resourceVersion")
        while True:
            current = self.api.store.get(kind, request.namespace, request.name)
            merged = apply_merge_patch(current, body)
            if precondition is None:
                merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if not status_only:
                self.api.validate(kind, merged, strict)
            try:
                return self.api.store.update(kind, request.namespace, request.name, merged, status_only=status_only)
            except ApiStatusError as error:
                # Like the API server, retry a patch without a precondition when another write won.
                if error.code != 409 or precondition is not None:
                    raise

    # -- watch --------------------------------------------------------------------------------------

    def _write_chunk(self, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode() + b"\n"
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _watch(self, request: _Request, fault: Fault | None) -> None:
        kind = request.kind
        assert kind is not None
        store = self.api.store
        fields = selector_dict(request.query.get("fieldSelector"))
        labels = selector_dict(request.query.get("labelSelector"))
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
            items, revision = store.list(kind, request.namespace, fields, labels)
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
                events, current = store.events_after(kind, request.namespace, revision, min(remaining, 0.2))
            except ApiStatusError as error:
                self._write_chunk({"type": "ERROR", "object": error.status()})
                break
            for event in events:
                revision = event.resource_version
                if not matches(event.object, fields, labels):
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
