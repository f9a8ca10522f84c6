"""podman's Docker Engine API for the docker SDK, and so for KFP's ``DockerRunner``.

``podman system service`` serves the Docker API on a unix socket. kfp's DockerRunner starts every task
container with ``auto_remove=True`` and then waits for it; when the container is already gone, Docker
answers the wait with 404 (which kfp catches, assuming success) but podman 4.3 answers 500, and the task
fails at random (seen in 1 of 5 runs). :class:`DockerApiShim` sits between the SDK and podman and turns
``AutoRemove`` off in container-create requests, so every wait finds its container and returns the task's
real exit code (with auto-removal, a task that failed quickly would even have counted as a success). The
shim removes the containers itself once the run is over. Everything else passes through unchanged.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from serving_core.errors import OperationTimeoutError
from serving_core.processes import LocalProcess, launch, log_tail, wait_until
from tests.support.containers import ContainerError, ContainerTools

# Response headers that describe the upstream connection's framing; the shim answers with Connection: close.
_HOP_HEADERS = {"connection", "content-length", "transfer-encoding", "keep-alive"}


class PodmanService(LocalProcess):
    """``podman system service`` on our image store: the Docker Engine API on a unix socket."""

    def __init__(self, tools: ContainerTools, workdir: Path) -> None:
        self.tools = tools
        self.socket = workdir / "podman.sock"
        self.log_path = workdir / "podman-service.log"

    def start(self) -> PodmanService:
        """Start the service and wait until it answers ``/_ping``."""
        self._process = launch(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            log_path=self.log_path,
            env=self.tools.env,
        )
        try:
            wait_until(lambda: _pings(self.socket), timeout_s=60, what="podman API service", process=self._process)
        except OperationTimeoutError as error:
            self.stop()
            raise ContainerError(f"{error}; log tail:\n{log_tail(self.log_path)}") from error
        return self


def _pings(path: Path) -> bool:
    if not path.exists():
        return False
    connection = _UnixConnection(str(path))
    try:
        connection.request("GET", "/_ping")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, upstream: str) -> None:
        self.upstream = upstream
        self.created: list[str] = []
        super().__init__(path, _Forward)


class _Forward(BaseHTTPRequestHandler):
    """Forward one request to podman; create requests go out with AutoRemove off."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def address_string(self) -> str:
        return "docker-sdk"  # a unix socket peer has no address

    def log_message(self, format: str, *args: Any) -> None:
        pass  # podman's own log has the requests

    def _forward(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            # Not sent by the calls DockerRunner makes (create, start, logs, wait, images); refuse, do not guess.
            self.send_error(501, "the Docker API shim does not forward chunked request bodies")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        creating = self.command == "POST" and self.path.split("?")[0].endswith("/containers/create")
        if creating and body:
            spec = json.loads(body)
            spec.setdefault("HostConfig", {})["AutoRemove"] = False
            body = json.dumps(spec).encode()
        headers = {key: value for key, value in self.headers.items() if key.lower() not in _HOP_HEADERS}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        upstream = _UnixConnection(self.server.upstream)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if creating and response.status == 201:
                answer = response.read()
                self.server.created.append(json.loads(answer)["Id"])
                self.wfile.write(answer)
            else:
                # Streamed as it arrives: container logs follow the task while it runs.
                while chunk := response.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
        finally:
            upstream.close()
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


class DockerApiShim:
    """A Docker API socket in front of podman's that keeps task containers until the run is over."""

    def __init__(self, service: PodmanService, workdir: Path) -> None:
        self.service = service
        self.socket = workdir / "docker.sock"
        self._server: _Server | None = None

    @property
    def docker_host(self) -> str:
        """The value for ``DOCKER_HOST``."""
        return f"unix://{self.socket}"

    @property
    def created(self) -> list[str]:
        """Ids of the containers created through the shim, in order."""
        return list(self._server.created) if self._server else []

    def __enter__(self) -> DockerApiShim:
        self._server = _Server(str(self.socket), str(self.service.socket))
        threading.Thread(target=self._server.serve_forever, name="docker-api-shim", daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        for container in self._server.created:
            self.service.tools.run("podman", "rm", "--force", container, check=False)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._server = None
