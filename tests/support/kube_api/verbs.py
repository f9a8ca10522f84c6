"""The write and read verbs, in kube-apiserver's order: decode (unknown fields), admission, validation, store."""

from __future__ import annotations

import re
from typing import Any

from inference_services.versions import KServeVersion
from tests.support.kube_api.admission import admit, default, refresh_quota_status
from tests.support.kube_api.errors import ApiStatusError, bad_request, invalid
from tests.support.kube_api.field_validation import apply_field_validation, schema_problems
from tests.support.kube_api.merge_patch import apply_merge_patch
from tests.support.kube_api.resources import INFERENCE_SERVICES, NAMESPACES, RESOURCE_QUOTAS, ResourceType
from tests.support.kube_api.routing import ApiRequest
from tests.support.kube_api.selectors import parse
from tests.support.kube_api.store import ObjectStore

_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                  "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")  # fmt: skip
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    # Strategic merge patch differs from a merge patch only in how it merges keyed lists; for maps it is one.
    "application/strategic-merge-patch+json": "strategic",
}


class Verbs:
    """Serve one request's verb against the store; answers ``(code, document, warnings)``."""

    def __init__(self, store: ObjectStore, crd_version: KServeVersion) -> None:
        self.store = store
        self.crd_version = crd_version

    def serve(
        self, method: str, request: ApiRequest, body: Any, content_type: str, manager: str
    ) -> tuple[int, dict[str, Any], list[str]]:
        kind = request.kind
        assert kind is not None
        namespace = request.store_namespace
        if method == "GET" and request.name:
            return 200, self.store.get(kind, namespace, request.name), []
        if method == "GET":
            selector = parse(kind, request.query.get("fieldSelector"), request.query.get("labelSelector"))
            items, revision = self.store.list(kind, namespace if kind.namespaced else None, selector)
            listing = {"apiVersion": kind.api_version, "kind": kind.list_kind,
                       "metadata": {"resourceVersion": str(revision)}, "items": items}  # fmt: skip
            return 200, listing, []
        if method == "DELETE":
            return 200, self.store.delete(kind, namespace, request.name, _propagation(request, body)), []
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        directive = request.query.get("fieldValidation", "")
        if method == "PATCH":
            body = self._patched(request, body, content_type)
        document, warnings = apply_field_validation(kind, body, directive, self.crd_version)
        if method == "POST":
            if not kind.namespaced:
                document.setdefault("metadata", {}).pop("namespace", None)
            document = admit(self.store, kind, namespace, document)
            self._validate(kind, document)
            created = self.store.create(kind, namespace, document, manager=manager)
            if kind == RESOURCE_QUOTAS:
                refresh_quota_status(self.store, namespace)
                created = self.store.get(kind, namespace, created["metadata"]["name"])
            return 201, created, warnings
        return 200, self._write(request, document, manager, precondition=method == "PUT"), warnings

    def _patched(self, request: ApiRequest, patch: dict[str, Any], content_type: str) -> dict[str, Any]:
        kind = request.kind
        assert kind is not None
        patch_type = _PATCH_TYPES.get(content_type)
        if patch_type is None or (patch_type == "strategic" and kind.custom):
            accepted = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            if not kind.custom:
                accepted = accepted.replace(
                    "merge-patch+json,", "merge-patch+json, application/strategic-merge-patch+json,"
                )
            raise ApiStatusError(
                415, "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: {accepted}",
            )  # fmt: skip
        current = self.store.get(kind, request.store_namespace, request.name)
        merged: dict[str, Any] = apply_merge_patch(current, patch)
        if "resourceVersion" not in (patch.get("metadata") or {}):
            # A patch without a precondition applies to whatever version is current when it is stored.
            merged["metadata"].pop("resourceVersion", None)
        return merged

    def _write(self, request: ApiRequest, document: dict[str, Any], manager: str, precondition: bool) -> dict[str, Any]:
        kind = request.kind
        assert kind is not None
        namespace = request.store_namespace
        if document.get("metadata", {}).get("name") != request.name:
            raise bad_request("the name of the object does not match the name on the URL")
        if precondition and kind.custom and not document["metadata"].get("resourceVersion"):
            raise invalid(kind, request.name, [("metadata.resourceVersion",
                                                "Invalid value: 0x0: must be specified for an update")])  # fmt: skip
        status_only = request.subresource == "status"
        while True:
            current = self.store.get(kind, namespace, request.name)
            candidate = dict(document)
            if status_only:
                # Only status changes through the status subresource; it is validated with the whole object.
                candidate = {**current, "status": document.get("status", {}),
                             "metadata": {**current["metadata"], **_version_of(document)}}  # fmt: skip
            self._validate(kind, default(kind, candidate), old=current)
            try:
                written = self.store.update(kind, namespace, request.name, candidate, status_only=status_only,
                                            require_resource_version=False, manager=manager)  # fmt: skip
            except ApiStatusError as error:
                # Like the API server, a write without a precondition is retried when another write won.
                if error.code == 409 and not document["metadata"].get("resourceVersion"):
                    continue
                raise
            if kind == RESOURCE_QUOTAS:
                refresh_quota_status(self.store, namespace)
                written = self.store.get(kind, namespace, request.name)
            return written

    def _validate(self, kind: ResourceType, document: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        """422 for objects the CRD schema, name rules or immutable fields refuse."""
        name = str(document.get("metadata", {}).get("name") or "")
        problems: list[tuple[str, str]] = []
        if kind == INFERENCE_SERVICES:
            problems += schema_problems(document, self.crd_version)
            if name and not _ISVC_NAME.match(name):
                problems.append(("metadata.name", f'Invalid value: "{name}": an InferenceService name must start '
                                                  "with a letter and hold only lower case alphanumeric characters "
                                                  "or '-'"))  # fmt: skip
        elif kind == NAMESPACES and name and not _DNS_LABEL.match(name):
            problems.append(("metadata.name", f'Invalid value: "{name}": {_LABEL_MESSAGE}'))
        elif name and not _DNS_SUBDOMAIN.match(name):
            problems.append(("metadata.name", f'Invalid value: "{name}": {_SUBDOMAIN_MESSAGE}'))
        if old is not None and kind == NAMESPACES and document.get("spec") != old.get("spec"):
            problems.append(("spec.finalizers", "Forbidden: field is immutable; use the finalize subresource"))
        if problems:
            raise invalid(kind, name, problems)


def _version_of(document: dict[str, Any]) -> dict[str, Any]:
    version = document.get("metadata", {}).get("resourceVersion")
    return {"resourceVersion": version} if version else {}


def _propagation(request: ApiRequest, body: Any) -> str:
    options = body if isinstance(body, dict) else {}
    policy = options.get("propagationPolicy") or request.query.get("propagationPolicy")
    if policy:
        return str(policy)
    orphan = options.get("orphanDependents", request.query.get("orphanDependents"))
    if orphan is not None:
        return "Orphan" if str(orphan).lower() == "true" else "Background"
    return "Background"
