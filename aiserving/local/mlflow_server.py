"""A real ``mlflow server`` on 127.0.0.1 with sqlite and local artifacts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import requests

from serving_core.processes import LocalProcess, announced_port, launch_and_wait, log_size

# MLflow 3 serves through uvicorn, which logs the port it bound.
_LISTENING = re.compile(r"Uvicorn running on https?://[^\s]+:(\d+)")


class LocalMlflowServer(LocalProcess):
    """Run ``mlflow server`` with its state under ``state_dir`` until closed.

    The state (sqlite database and artifacts) survives restarts, so a second
    start sees every model registered before. Each start binds a port of the
    kernel's choosing, read back from the log into :attr:`port`.
    """

    def __init__(self, state_dir: Path, startup_timeout_s: float = 120.0) -> None:
        """Remember where state lives; nothing starts before :meth:`start`."""
        self.state_dir = state_dir.absolute()
        self.port = 0
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
            "--port", "0",
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.state_dir / 'mlflow.db'}",
            "--artifacts-destination", str(self.state_dir / "artifacts"),
            "--serve-artifacts",
        ]  # fmt: skip
        new_lines = log_size(log_path)

        def ready() -> bool:
            self.port = announced_port(log_path, _LISTENING, after=new_lines) or 0
            return self.port != 0 and self._healthy()

        self._process = launch_and_wait(
            command, log_path=log_path, ready=ready, what="mlflow server",
            timeout_s=self.startup_timeout_s, cwd=self.state_dir,
        )  # fmt: skip
        return self
