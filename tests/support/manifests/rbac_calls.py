"""Map Kubernetes API requests to RBAC (apiGroup, resource, verb) and compare them with a Role.

The deploy client's calls are observed on the wire (the test API server's request log), so the Role
is checked against what the code really does rather than against a hand-kept list.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tests.support.manifests.objects import Obj, ref


@dataclass(frozen=True, order=True)
class ApiCall:
    """One RBAC-relevant call: the resource includes a subresource as ``pods/log``."""

    api_group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}{'.' + self.api_group if self.api_group else ''}"


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def api_call(method: str, url: str) -> ApiCall:
    """The RBAC call an HTTP request to the API server needs (namespaced resource paths only).

    ``GET`` on a collection is ``list`` (``watch`` with ``?watch=true``), on an object ``get``;
    ``DELETE`` on a collection is ``deletecollection``.
    """
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments[:2] == ["api", "v1"]:
        group, rest = "", segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 3:
        group, rest = segments[1], segments[3:]
    else:
        raise ValueError(f"not a Kubernetes resource path: {parts.path}")
    if len(rest) < 3 or rest[0] != "namespaces":
        raise ValueError(f"not a namespaced resource path: {parts.path}")
    resource, named = rest[2], rest[3:]
    if len(named) > 1:
        resource = f"{resource}/{named[1]}"
    method = method.upper()
    if method == "GET":
        watching = parse_qs(parts.query).get("watch", ["false"])[0].lower() in ("true", "1")
        verb = "watch" if watching else ("get" if named else "list")
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = _VERBS[method]
    return ApiCall(group, resource, verb)


def allowed_calls(role: Obj) -> set[ApiCall]:
    """Every (group, resource, verb) a Role's rules grant; wildcards are refused, not expanded."""
    granted: set[ApiCall] = set()
    for rule in role.get("rules") or []:
        for field in ("apiGroups", "resources", "verbs"):
            if "*" in (rule.get(field) or []):
                raise ValueError(f"{ref(role)}: wildcard in {field}; list the calls instead")
        granted.update(
            ApiCall(group, resource, verb)
            for group in rule.get("apiGroups") or []
            for resource in rule.get("resources") or []
            for verb in rule.get("verbs") or []
        )
    return granted


def coverage_problems(used: set[ApiCall], role: Obj) -> list[str]:
    """What the Role misses (the client would get 403) and what it grants but nothing uses."""
    granted = allowed_calls(role)
    problems = [
        f"{ref(role)}: does not allow '{call}', which the deploy client makes" for call in sorted(used - granted)
    ]
    problems += [
        f"{ref(role)}: allows '{call}', which the deploy client never makes" for call in sorted(granted - used)
    ]
    return problems
