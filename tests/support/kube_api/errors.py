"""API errors as Kubernetes ``Status`` objects."""

from __future__ import annotations

from typing import Any


class ApiStatusError(Exception):
    """An error answer: HTTP code, Kubernetes reason and message."""

    def __init__(self, code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes or []

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.causes:
            body["details"] = {"causes": self.causes}
        return body


def not_found(kind: str, name: str) -> ApiStatusError:
    return ApiStatusError(404, "NotFound", f'{kind} "{name}" not found')


def already_exists(kind: str, name: str) -> ApiStatusError:
    return ApiStatusError(409, "AlreadyExists", f'{kind} "{name}" already exists')


def stale(kind: str, name: str) -> ApiStatusError:
    return ApiStatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )


def gone(resource_version: int) -> ApiStatusError:
    return ApiStatusError(410, "Expired", f"too old resource version: {resource_version}")


def invalid(kind: str, name: str, problems: list[str]) -> ApiStatusError:
    causes = [{"reason": "FieldValueInvalid", "message": problem} for problem in problems]
    return ApiStatusError(422, "Invalid", f'{kind} "{name}" is invalid: ' + "; ".join(problems), causes)
