"""A real TorchServe on 127.0.0.1 that serves packaged ``.mar`` files, registered one by one.

TorchServe takes about 30 s to start, so one server serves many packages: each verification copies
its ``.mar`` into the server's model store and registers it through the management API.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import requests

from serving_core.errors import RemoteServiceError
from serving_core.processes import LocalProcess, launch, listening_ports, wait_ready


def find_torchserve() -> str | None:
    """``torchserve`` next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "torchserve"
    return str(beside) if beside.exists() else shutil.which("torchserve")


def missing_reason() -> str | None:
    """Why TorchServe cannot run here, or ``None``."""
    if find_torchserve() is None:
        return "no torchserve command: pip install torchserve==0.12.0"
    if shutil.which("java") is None:
        return "no java on PATH: TorchServe needs Java 17 (apt-get install openjdk-17-jre-headless)"
    return None


class TorchServeServer(LocalProcess):
    """TorchServe with token auth off and the model API on, stopped with its whole process group."""

    stop_grace_s = 20.0

    def __init__(self, work_dir: Path, startup_timeout_s: float = 180.0) -> None:
        """Remember where it works; nothing starts before :meth:`start`, which learns the port."""
        self.work_dir = work_dir
        self.model_store = work_dir / "model-store"
        self.port = 0  # inference and management API; known once started
        self.startup_timeout_s = startup_timeout_s

    @property
    def log_path(self) -> Path:
        """The launcher's and frontend's console log."""
        return self.work_dir / "torchserve.log"

    @property
    def management_url(self) -> str:
        """Base URL of the management API."""
        return f"http://127.0.0.1:{self.port}"

    def infer_url(self, name: str) -> str:
        """The V2 infer path of model ``name``: the one KServe's torchserve wrapper calls."""
        return f"http://127.0.0.1:{self.port}/v2/models/{name}/infer"

    def _properties(self) -> str:
        # Port 0 everywhere: TorchServe binds what the kernel gives but logs only the address it was given,
        # so the port is found among the listening sockets of its process group. The inference and management
        # addresses are equal, so one listener serves both APIs.
        properties = {
            "inference_address": "http://127.0.0.1:0",
            "management_address": "http://127.0.0.1:0",
            "metrics_address": "http://127.0.0.1:0",
            "grpc_inference_port": "0",
            "grpc_management_port": "0",
            "model_store": str(self.model_store),
            "disable_token_authorization": "true",
            "enable_model_api": "true",
            "install_py_dep_per_model": "false",
            "default_workers_per_model": "1",
        }
        return "".join(f"{key}={value}\n" for key, value in properties.items())

    @staticmethod
    def _pings(port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> TorchServeServer:
        """Start TorchServe and wait for ``/ping``.

        Raises:
            OperationTimeoutError: it did not answer in time.
        """
        self.model_store.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "config.properties"
        config.write_text(self._properties(), encoding="utf-8")
        command = [
            find_torchserve() or "torchserve",
            "--start", "--foreground", "--ncs",
            "--ts-config", str(config),
            "--model-store", str(self.model_store),
            "--disable-token-auth", "--enable-model-api",
        ]  # fmt: skip
        # TMPDIR keeps its pid file apart from any other TorchServe on this machine.
        environment = {
            **os.environ,
            "TMPDIR": str(self.work_dir),
            "LOG_LOCATION": str(self.work_dir / "logs"),
            "METRICS_LOCATION": str(self.work_dir / "logs"),
        }
        # Its own session: stopping it also stops the Java frontend and the workers it spawns.
        process = launch(command, log_path=self.log_path, cwd=self.work_dir, env=environment, own_session=True)

        def ready() -> bool:
            # The metrics and gRPC listeners do not answer /ping.
            self.port = next((port for port in sorted(listening_ports(process)) if self._pings(port)), 0)
            return self.port != 0

        wait_ready(process, ready, log_path=self.log_path, what="TorchServe", timeout_s=self.startup_timeout_s)
        self._process = process
        return self

    def register(self, mar: Path, name: str) -> None:
        """Copy ``mar`` into the model store and load it with one worker; replaces a model of that name.

        Raises:
            RemoteServiceError: TorchServe could not load the archive.
        """
        requests.delete(f"{self.management_url}/models/{name}", timeout=60)
        shutil.copyfile(mar, self.model_store / f"{name}.mar")
        response = requests.post(
            f"{self.management_url}/models",
            params={"url": f"{name}.mar", "model_name": name, "initial_workers": "1", "synchronous": "true"},
            timeout=300,
        )
        if response.status_code != 200:
            raise RemoteServiceError(
                f"TorchServe could not load {mar.name}: {response.status_code} {response.text[:500]}",
                hint=f"see {self.log_path} and {self.work_dir / 'logs'}",
            )

    def unregister(self, name: str) -> None:
        """Unload model ``name``."""
        requests.delete(f"{self.management_url}/models/{name}", timeout=60)
