"""API paths and queries in the terms kube-apiserver's RequestInfo uses (and RBAC matches on)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.support.kube_api.resources import BY_PATH, NAMESPACES, ResourceType

_NAMESPACED = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<subresource>[^/]+))?$"
)
_NAMESPACE = re.compile(r"^/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<subresource>status|finalize))?)?$")


class ApiRequest:
    """A parsed API path and query: kind, namespace, name, subresource, verb."""

    def __init__(self, method: str, raw_path: str) -> None:
        parts = urlsplit(raw_path)
        self.query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.kind: ResourceType | None = None
        self.namespace = self.name = self.subresource = ""
        self.group = self.plural = ""
        if found := _NAMESPACE.match(parts.path):
            self.kind, self.plural = NAMESPACES, NAMESPACES.plural
            self.name = found["name"] or ""
            # RequestInfo names the namespace of a namespace request after the namespace itself.
            self.namespace = self.name
            self.subresource = found["subresource"] or ""
        elif found := _NAMESPACED.match(parts.path):
            self.group = found["group"] or ""
            version = found["core_version"] or found["version"]
            self.plural = found["plural"]
            kind = BY_PATH.get((self.group, version, self.plural))
            self.kind = kind if kind is not None and kind.namespaced else None
            self.namespace = found["namespace"]
            self.name = found["name"] or ""
            self.subresource = found["subresource"] or ""
        self.watch = self.query.get("watch", "").lower() in ("true", "1")
        self.verb = self._verb(method)

    @property
    def store_namespace(self) -> str:
        """Where the object lives in the store: cluster-scoped kinds under ``""``."""
        return self.namespace if self.kind is None or self.kind.namespaced else ""

    def _verb(self, method: str) -> str:
        if method == "GET":
            return "watch" if self.watch else ("get" if self.name else "list")
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
            method, "delete" if self.name else "deletecollection"
        )
