"""The InferenceService calls of the deploy client: each one retried on 429/5xx and translated."""

from __future__ import annotations

import math
from collections.abc import Iterator

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from inference_services.connection import FIELD_MANAGER, KubeClients
from inference_services.kube_errors import RETRYABLE_STATUSES, translate
from inference_services.retry import call_with_retries
from serving_core.errors import NotFoundError
from serving_core.kube_objects import Document, metadata

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"


class WatchExpired(Exception):
    """The watch's resourceVersion is older than the API server keeps (410 Gone): read again."""


class WatchInterrupted(Exception):
    """The watch stream broke (connection cut, 429/5xx): watch again from the last resourceVersion."""


class InferenceServiceApi:
    """get / create / replace / merge-patch / delete / watch for InferenceServices in one namespace."""

    def __init__(self, clients: KubeClients, namespace: str) -> None:
        """Bind to the clients and namespace."""
        self.clients = clients
        self.namespace = namespace

    def _what(self, verb: str, name: str = "") -> str:
        return f'{verb} InferenceService "{self.namespace}/{name}"' if name else f"{verb} InferenceServices"

    def get(self, name: str) -> Document:
        """Read one InferenceService. Raises NotFoundError when it does not exist."""
        custom = self.clients.custom
        result: Document = call_with_retries(
            lambda: custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=self.clients.retry.timeouts
            ),
            action=self._what("read", name),
            policy=self.clients.retry,
        )
        return result

    def find(self, name: str) -> Document | None:
        """Read one InferenceService, or None when it does not exist."""
        try:
            return self.get(name)
        except NotFoundError:
            return None

    def create(self, document: Document) -> Document:
        """Create (strict field validation: unknown fields are refused, not dropped)."""
        custom = self.clients.custom
        result: Document = call_with_retries(
            lambda: custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, document, field_validation="Strict",
                field_manager=FIELD_MANAGER, _request_timeout=self.clients.retry.timeouts,
            ),
            action=self._what("create", metadata(document)["name"]),
            policy=self.clients.retry,
        )  # fmt: skip
        return result

    def replace(self, document: Document) -> Document:
        """PUT the whole object; its ``metadata.resourceVersion`` makes a stale write fail with 409."""
        custom = self.clients.custom
        name = metadata(document)["name"]
        result: Document = call_with_retries(
            lambda: custom.replace_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, document, field_validation="Strict",
                field_manager=FIELD_MANAGER, _request_timeout=self.clients.retry.timeouts,
            ),
            action=self._what("update", name),
            policy=self.clients.retry,
        )  # fmt: skip
        return result

    def merge_patch(self, name: str, patch: Document) -> Document:
        """JSON merge patch: ``None`` values delete fields; lists are replaced whole."""
        custom = self.clients.custom
        result: Document = call_with_retries(
            lambda: custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch, field_validation="Strict",
                field_manager=FIELD_MANAGER, _request_timeout=self.clients.retry.timeouts,
            ),
            action=self._what("patch", name),
            policy=self.clients.retry,
        )  # fmt: skip
        return result

    def delete(self, name: str, *, foreground: bool = False) -> None:
        """Delete; NotFoundError when it is already gone.

        With ``foreground`` the object stays (with a deletion timestamp) until the garbage collector has
        removed what it owns, so seeing it gone means its history went too.
        """
        custom = self.clients.custom
        policy = "Foreground" if foreground else "Background"
        call_with_retries(
            lambda: custom.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                propagation_policy=policy,
                _request_timeout=self.clients.retry.timeouts,
            ),
            action=self._what("delete", name),
            policy=self.clients.retry,
        )

    def watch(self, name: str, resource_version: str, timeout_s: float) -> Iterator[tuple[str, Document]]:
        """Events for one InferenceService after ``resource_version``, bookmarks included.

        The stream ends when the server's ``timeoutSeconds`` runs out.

        Raises:
            WatchExpired: the resourceVersion is too old (410 Gone).
            WatchInterrupted: the stream broke; watch again from the last resourceVersion seen.
            AiServingError: any other API error, translated.
        """
        stream = watch.Watch().stream(
            self.clients.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, math.ceil(timeout_s)),
            _request_timeout=(self.clients.retry.request_timeout_s, timeout_s + 10),
        )
        try:
            for event in stream:
                yield str(event["type"]), event["raw_object"]
        except ApiException as error:
            if error.status == 410:
                raise WatchExpired(str(error.reason)) from error
            if error.status in RETRYABLE_STATUSES:
                raise WatchInterrupted(f"HTTP {error.status}") from error
            raise translate(error, self._what("watch", name)) from error
        except urllib3.exceptions.HTTPError as error:
            raise WatchInterrupted(type(error).__name__) from error
