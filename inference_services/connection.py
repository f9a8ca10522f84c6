"""Connect to a cluster from a kubeconfig file and context, or from inside a pod."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from inference_services.retry import RetryPolicy
from serving_core.errors import InvalidInputError

# The name our writes are recorded under in managedFields. Without it the client sends none and the API
# server takes the User-Agent ("OpenAPI-Generator", shared by every tool built on the Python client), so a
# later kubectl apply --server-side could not tell our fields from anyone else's.
FIELD_MANAGER = "aiserving"


@dataclass(frozen=True)
class KubeClients:
    """The API groups the deploy client talks to, and how patiently."""

    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    default_namespace: str = "default"
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, OSError):
        return "default"
    chosen = next((entry for entry in contexts if entry["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def connect(kubeconfig: str | None = None, context: str | None = None, retry: RetryPolicy | None = None) -> KubeClients:
    """Clients for the cluster named by ``kubeconfig``/``context`` (kubectl's rules), or in-cluster config.

    Raises:
        InvalidInputError: the kubeconfig cannot be read or has no such context.
    """
    policy = retry or RetryPolicy()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    in_cluster = not path and not os.path.exists(os.path.expanduser("~/.kube/config"))
    configuration = client.Configuration()
    # Our retry loop owns retries (429/5xx with Retry-After, broken connections); urllib3 must not add its own.
    configuration.retries = False
    if in_cluster and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
        namespace_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        namespace = namespace_file.read_text(encoding="utf-8").strip() if namespace_file.exists() else "default"
    else:
        try:
            config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        except (ConfigException, OSError, ValueError) as error:
            raise InvalidInputError(
                f"cannot use kubeconfig {path or '~/.kube/config'} (context {context or 'current'}): {error}",
                hint="pass --kubeconfig FILE and --context NAME that exist (kubectl config get-contexts)",
            ) from error
        namespace = _context_namespace(path, context)
    api_client = client.ApiClient(configuration)
    return KubeClients(client.CustomObjectsApi(api_client), client.CoreV1Api(api_client), namespace, policy)
