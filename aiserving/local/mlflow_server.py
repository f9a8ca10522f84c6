"""A real ``mlflow server`` on 127.0.0.1 with sqlite and local artifacts."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from serving_core.processes import LocalProcess, free_port, launch_and_wait


class LocalMlflowServer(LocalProcess):
    """Run ``mlflow server`` with its state under ``state_dir`` until closed.

    The state (sqlite database and artifacts) survives restarts, so a second
    start sees every model registered before.
    """

    def __init__(self, state_dir: Path, port: int | None = None, startup_timeout_s: float = 120.0) -> None:
        """Remember where state lives; nothing starts before :meth:`start`."""
        self.state_dir = state_dir.absolute()
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s

    @property
    def uri(self) -> str:
        """The tracking and registry URI of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.uri}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> LocalMlflowServer:
        """Start the server and wait until ``/health`` answers."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.state_dir / "mlflow-server.log"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.state_dir / 'mlflow.db'}",
            "--artifacts-destination", str(self.state_dir / "artifacts"),
            "--serve-artifacts",
        ]  # fmt: skip
        self._process = launch_and_wait(
            command, log_path=log_path, ready=self._healthy, what="mlflow server",
            timeout_s=self.startup_timeout_s, cwd=self.state_dir,
        )  # fmt: skip
        return self
