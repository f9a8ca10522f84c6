"""Compare the RBAC calls a client makes with what a Role grants.

The deploy client's calls are observed on the wire (the test API server's request log, already in
RBAC terms), so the Role is checked against what the code really does, not against a hand-kept list.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.manifests.objects import Obj, ref


@dataclass(frozen=True, order=True)
class ApiCall:
    """One RBAC-relevant call: the resource includes a subresource as ``pods/log``."""

    api_group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}{'.' + self.api_group if self.api_group else ''}"


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
