"""One error hierarchy for the whole product, keyed on what happened.

Every error says which value was wrong and how to fix it. ``retryable`` tells
callers (pipelines, retry loops) whether trying again can help; the CLI maps
each class to an exit code so scripts can branch on the kind of failure.
"""

from __future__ import annotations


class AiServingError(Exception):
    """Base class of every error the product raises on purpose."""

    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        """Keep the message and an optional hint that says how to fix it."""
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class InvalidInputError(AiServingError):
    """The caller gave a value we cannot use; nothing was written."""

    exit_code = 2


class NotFoundError(AiServingError):
    """A named thing (model, version, alias, object) does not exist."""

    exit_code = 3


class ConflictError(AiServingError):
    """The target changed under us or already exists in another state."""

    exit_code = 4
    retryable = True


class PermissionDeniedError(AiServingError):
    """The credentials in use are not allowed to do this."""

    exit_code = 5


class UnreachableError(AiServingError):
    """A remote service could not be reached; trying later may work."""

    exit_code = 6
    retryable = True


class OperationTimeoutError(AiServingError):
    """A wait ran out before the target reached the wanted state."""

    exit_code = 7
    retryable = True


class UnsupportedError(AiServingError):
    """The combination asked for is not supported; retrying cannot help."""

    exit_code = 8


class RemoteServiceError(AiServingError):
    """A remote service answered with an error we cannot fix on our side."""

    exit_code = 9

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool = False) -> None:
        """Record whether the remote failure is transient (5xx, 429) or permanent."""
        super().__init__(message, hint=hint)
        self.retryable = retryable
