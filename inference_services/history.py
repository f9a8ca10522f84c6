"""Keep the spec an InferenceService had before our last change, so a rollback can restore it.

Stored in a ConfigMap ``<name>-aiserving-history`` owned by the InferenceService (deleted with it).
Not an annotation on the InferenceService: annotations reach the Knative revision template, so
writing one would start a new revision by itself.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes import client
from pydantic import BaseModel

from inference_services.connection import FIELD_MANAGER, KubeClients
from inference_services.retry import call_with_retries
from serving_core.errors import ConflictError, NotFoundError
from serving_core.kube_objects import Document, inference_service

HISTORY_KEY = "history.json"


class DeploymentHistory(BaseModel):
    """What a rollback needs: the previous spec, and the full predictor a Standard canary promotes to."""

    previous_spec: dict[str, Any] | None = None
    canary_predictor: dict[str, Any] | None = None


def stable_spec(live: Document) -> dict[str, Any]:
    """The live spec without a canary in progress: what a rollback should bring back."""
    spec: dict[str, Any] = copy.deepcopy(live["spec"])
    spec.pop("canary", None)
    spec.get("predictor", {}).pop("canaryTrafficPercent", None)
    return spec


def history_name(isvc_name: str) -> str:
    """The ConfigMap name for ``isvc_name``."""
    return f"{isvc_name}-aiserving-history"


class HistoryStore:
    """Read and write the history ConfigMap of InferenceServices in one namespace."""

    def __init__(self, clients: KubeClients, namespace: str) -> None:
        """Bind to the clients and namespace."""
        self.clients = clients
        self.namespace = namespace

    def _read(self, isvc_name: str) -> client.V1ConfigMap | None:
        name = history_name(isvc_name)
        try:
            found: client.V1ConfigMap = call_with_retries(
                lambda: self.clients.core.read_namespaced_config_map(
                    name, self.namespace, _request_timeout=self.clients.retry.timeouts
                ),
                action=f'read ConfigMap "{self.namespace}/{name}"',
                policy=self.clients.retry,
            )
        except NotFoundError:
            return None
        return found

    def _create(self, name: str, owner: client.V1OwnerReference, data: dict[str, str]) -> None:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=name, labels={"app.kubernetes.io/managed-by": "aiserving"}, owner_references=[owner]
            ),
            data=data,
        )
        call_with_retries(
            lambda: self.clients.core.create_namespaced_config_map(
                self.namespace, body, field_manager=FIELD_MANAGER, _request_timeout=self.clients.retry.timeouts
            ),
            action=f'create ConfigMap "{self.namespace}/{name}"',
            policy=self.clients.retry,
        )

    def _replace(self, name: str, config_map: client.V1ConfigMap) -> None:
        call_with_retries(
            lambda: self.clients.core.replace_namespaced_config_map(
                name,
                self.namespace,
                config_map,
                field_manager=FIELD_MANAGER,
                _request_timeout=self.clients.retry.timeouts,
            ),
            action=f'update ConfigMap "{self.namespace}/{name}"',
            policy=self.clients.retry,
        )

    def load(self, isvc_name: str) -> DeploymentHistory:
        """The stored history, empty when none was kept."""
        config_map = self._read(isvc_name)
        if config_map is None or not (config_map.data or {}).get(HISTORY_KEY):
            return DeploymentHistory()
        return DeploymentHistory.model_validate(json.loads(config_map.data[HISTORY_KEY]))

    def save(self, isvc: Document, history: DeploymentHistory) -> None:
        """Create or replace the history of ``isvc`` (re-reading once if another writer won)."""
        view = inference_service(isvc)
        isvc_name = view["metadata"]["name"]
        name = history_name(isvc_name)
        data = {HISTORY_KEY: json.dumps(history.model_dump(mode="json"), sort_keys=True)}
        owner = client.V1OwnerReference(
            api_version=view["apiVersion"], kind=view["kind"], name=isvc_name, uid=view["metadata"]["uid"]
        )
        for _ in range(3):
            existing = self._read(isvc_name)
            try:
                if existing is None:
                    self._create(name, owner, data)
                else:
                    existing.data = data
                    existing.metadata.owner_references = [owner]
                    self._replace(name, existing)
                return
            except ConflictError:
                continue
        raise ConflictError(
            f'ConfigMap "{self.namespace}/{name}" kept changing while we wrote the rollback history',
            hint="another deploy of the same InferenceService is running; let it finish, then retry",
        )
