"""Serve a Python-wrapper package with our ``model_wrappers`` server (KServe's ModelServer) on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import requests

from serving_core.processes import LocalProcess, free_port, launch_and_wait


def missing_reason() -> str | None:
    """Why the wrapper server cannot run here, or ``None``."""
    if importlib.util.find_spec("model_wrappers.__main__") is None:
        return "the model_wrappers server (python -m model_wrappers) is not in this checkout"
    return None


class WrapperServer(LocalProcess):
    """``python -m model_wrappers`` serving one package directory."""

    def __init__(self, model_dir: Path, name: str, log_path: Path, startup_timeout_s: float = 120.0) -> None:
        """Pick free ports; nothing starts before :meth:`start`."""
        self.model_dir = model_dir
        self.name = name
        self.log_path = log_path
        self.http_port = free_port()
        self.startup_timeout_s = startup_timeout_s

    @property
    def infer_url(self) -> str:
        """The V2 infer endpoint of the served model."""
        return f"http://127.0.0.1:{self.http_port}/v2/models/{self.name}/infer"

    def _ready(self) -> bool:
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
        spec = importlib.util.find_spec("model_wrappers")
        origin = Path(spec.origin).parents[1] if spec is not None and spec.origin else Path.cwd()
        python_path = os.pathsep.join(filter(None, [str(origin), os.environ.get("PYTHONPATH")]))
        environment = {**os.environ, "PYTHONPATH": python_path}
        command = [
            sys.executable, "-m", "model_wrappers",
            "--model-dir", str(self.model_dir),
            "--model-name", self.name,
            "--http-port", str(self.http_port),
            "--grpc-port", str(free_port()),
        ]  # fmt: skip
        self._process = launch_and_wait(
            command, log_path=self.log_path, ready=self._ready, what="model_wrappers",
            timeout_s=self.startup_timeout_s, env=environment,
        )  # fmt: skip
        return self
