"""Serve a Python-wrapper package with our ``model_wrappers`` server (KServe's ModelServer) on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import requests

from serving_core.processes import LocalProcess, launch_and_wait, port_from_file, python_path_with


def missing_reason() -> str | None:
    """Why the wrapper server cannot run here, or ``None``."""
    if importlib.util.find_spec("model_wrappers.__main__") is None:
        return "the model server (python -m model_wrappers) is not importable here; install creativeflow-ai-serving"
    return None


class WrapperServer(LocalProcess):
    """``python -m model_wrappers`` serving one package directory."""

    def __init__(self, model_dir: Path, name: str, log_path: Path, startup_timeout_s: float = 120.0) -> None:
        """Remember what to serve; nothing starts before :meth:`start`, which learns the ports."""
        self.model_dir = model_dir
        self.name = name
        self.log_path = log_path
        self.http_port = 0
        self.startup_timeout_s = startup_timeout_s

    @property
    def infer_url(self) -> str:
        """The V2 infer endpoint of the served model."""
        return f"http://127.0.0.1:{self.http_port}/v2/models/{self.name}/infer"

    @property
    def port_file(self) -> Path:
        """Where the server writes the ports it bound (``{"http": ..., "grpc": ...}``) once listening."""
        return self.log_path.with_name(f"{self.log_path.stem}.ports.json")

    def _ready(self) -> bool:
        self.http_port = port_from_file(self.port_file) or 0
        if self.http_port == 0:
            return False
        try:
            url = f"http://127.0.0.1:{self.http_port}/v2/models/{self.name}/ready"
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> WrapperServer:
        """Start the server and wait until the model is ready.

        Raises:
            OperationTimeoutError: the model did not become ready.
        """
        environment = {**os.environ, "PYTHONPATH": python_path_with("model_wrappers")}
        command = [
            sys.executable, "-m", "model_wrappers",
            "--model-dir", str(self.model_dir),
            "--model-name", self.name,
            "--http-port", "0",
            "--grpc-port", "0",
            "--port-file", str(self.port_file),
        ]  # fmt: skip
        self.port_file.unlink(missing_ok=True)  # left by an earlier run with this log path
        self._process = launch_and_wait(
            command, log_path=self.log_path, ready=self._ready, what="model_wrappers",
            timeout_s=self.startup_timeout_s, env=environment,
        )  # fmt: skip
        return self
