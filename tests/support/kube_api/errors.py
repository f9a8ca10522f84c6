"""API errors as the ``Status`` objects kube-apiserver answers with, details included."""

from __future__ import annotations

from typing import Any

from tests.support.kube_api.resources import NAMESPACES, ResourceType


class ApiStatusError(Exception):
    """An error answer: HTTP code, Kubernetes reason, message and the optional ``details`` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(kind: ResourceType, name: str, kind_name: str | None = None) -> dict[str, Any]:
    # Like metav1.StatusDetails: "group" is omitted for the core group.
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind_name or kind.plural
    return details


def not_found(kind: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(404, "NotFound", f'{kind.qualified} "{name}" not found', _details(kind, name))


def namespace_not_found(namespace: str) -> ApiStatusError:
    return not_found(NAMESPACES, namespace)


def already_exists(kind: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(409, "AlreadyExists", f'{kind.qualified} "{name}" already exists', _details(kind, name))


def stale(kind: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(kind, name),
    )


def forbidden(kind: ResourceType, name: str, why: str, causes: list[dict[str, str]] | None = None) -> ApiStatusError:
    """403 as an admission plugin refuses: ``pods "x" is forbidden: why``."""
    details = _details(kind, name)
    if causes:
        details["causes"] = causes
    return ApiStatusError(403, "Forbidden", f'{kind.qualified} "{name}" is forbidden: {why}', details)


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", message)


def gone(resource_version: int) -> ApiStatusError:
    return ApiStatusError(410, "Expired", f"too old resource version: {resource_version}")


_CAUSE_REASONS = {"Required value": "FieldValueRequired", "Unsupported value": "FieldValueNotSupported"}


def invalid(kind: ResourceType, name: str, problems: list[tuple[str, str]]) -> ApiStatusError:
    """422 for ``(field, problem)`` pairs, worded as ``field.ErrorList.ToAggregate`` does (``[a, b]`` for several)."""
    causes = [
        {"reason": _CAUSE_REASONS.get(problem.split(":")[0], "FieldValueInvalid"), "message": problem, "field": field}
        for field, problem in problems
    ]
    kind_name = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    errors = [f"{field}: {problem}" for field, problem in problems]
    text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    details = {**_details(kind, name, kind.kind), "causes": causes}
    return ApiStatusError(422, "Invalid", f'{kind_name} "{name}" is invalid: {text}', details)
