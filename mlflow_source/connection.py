"""Where the registry is, how to reach it, and how to talk about it safely.

URIs and credentials come from arguments or from MLflow's own environment
variables (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``,
``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN``), which the MLflow client
reads itself. Only redacted URIs ever leave this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests

from serving_core.errors import UnreachableError

DEFAULT_TIMEOUT_S = 10.0


def redact_uri(uri: str) -> str:
    """Drop user info and query (where tokens hide) from a URI."""
    parts = urlsplit(uri)
    if not parts.netloc:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class RegistryConnection:
    """The tracking and registry URIs of one MLflow deployment."""

    tracking_uri: str
    registry_uri: str
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_settings(
        cls,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> RegistryConnection:
        """Take explicit URIs first, then MLflow's environment variables."""
        tracking = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000"
        registry = registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or tracking
        return cls(tracking_uri=tracking, registry_uri=registry, timeout_s=timeout_s)

    @property
    def redacted_tracking_uri(self) -> str:
        """The tracking URI without credentials, safe for output and lineage."""
        return redact_uri(self.tracking_uri)

    def check_reachable(self) -> None:
        """Fail fast when an HTTP registry does not answer.

        The MLflow client retries for minutes before giving up; one short probe
        turns that into a clear error that names the URI and the timeout.

        Raises:
            UnreachableError: the server did not answer within the timeout.
        """
        for uri in dict.fromkeys((self.tracking_uri, self.registry_uri)):
            if urlsplit(uri).scheme not in ("http", "https"):
                continue
            try:
                requests.get(f"{uri.rstrip('/')}/health", timeout=self.timeout_s)
            except requests.RequestException as error:
                raise UnreachableError(
                    f"MLflow registry at {redact_uri(uri)} is unreachable "
                    f"(no answer within {self.timeout_s:g} s: {type(error).__name__})",
                    hint="check --tracking-uri/--registry-uri or MLFLOW_TRACKING_URI, "
                    "and that the server is running and reachable from here",
                ) from error
