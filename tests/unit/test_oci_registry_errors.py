"""How registry answers map to our errors: 403 and 5xx from a minimal HTTP endpoint on 127.0.0.1.

docker-registry never answers 403 to a push (it says 401 insufficient_scope), but registries behind
policy engines (Harbor, GitLab, ECR) do; this endpoint answers like them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from oci_images.credentials import Credentials
from oci_images.registry import RegistryClient
from serving_core.errors import PermissionDeniedError, RemoteServiceError

ANSWERS = {
    "/v2/denied/blobs/uploads/": (403, "DENIED", "requested access to the resource is denied"),
    "/v2/broken/blobs/uploads/": (503, "UNAVAILABLE", "storage backend unavailable"),
}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        status, code, message = ANSWERS[self.path.split("?")[0]]
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_403_names_the_registry_the_credential_source_and_the_fix(endpoint: str) -> None:
    client = RegistryClient(endpoint, insecure=True, credentials=Credentials("/run/secret/.dockerconfigjson (reg)"))
    with pytest.raises(PermissionDeniedError) as caught:
        client.upload_blob("denied", [b"x"], lambda: "sha256:" + "0" * 64)
    assert str(caught.value) == (
        f"registry {endpoint} does not allow starting an upload to denied with /run/secret/.dockerconfigjson (reg): "
        "HTTP 403 (DENIED: requested access to the resource is denied)\n"
        "Hint: use credentials with push (and pull) rights on the repository; pass --registry-config PATH "
        "(a docker config.json or a mounted kubernetes.io/dockerconfigjson secret), set DOCKER_CONFIG or "
        "REGISTRY_AUTH_FILE, or set AISERVING_REGISTRY_USERNAME and AISERVING_REGISTRY_PASSWORD"
    )


def test_5xx_is_a_retryable_remote_error(endpoint: str) -> None:
    with pytest.raises(RemoteServiceError, match=r"HTTP 503 \(UNAVAILABLE: storage backend unavailable\)") as caught:
        RegistryClient(endpoint, insecure=True).upload_blob("broken", [b"x"], lambda: "sha256:" + "0" * 64)
    assert caught.value.retryable
