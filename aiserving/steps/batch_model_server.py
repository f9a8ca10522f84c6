"""Serve a model inside the shard pod for a batch job with a model URI (no InferenceService)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import requests

from serving_core.processes import LocalProcess, launch, port_from_file, wait_for, wait_ready


def fetch_model(model_uri: str, into: Path) -> Path:
    """The model folder for ``model_uri``: a local path as is, an ``s3://`` prefix downloaded under ``into``.

    Raises:
        NotFoundError: nothing under the URI; InvalidInputError: an unsupported scheme.
    """
    from batch_jobs.uris import open_location

    storage = open_location(model_uri)
    local = storage.local_path("")
    if local is not None:
        return local
    for stored in storage.list():
        target = into / stored.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read(stored.key))
    return into


class InPodModelServer(LocalProcess):
    """Our model wrapper (``python -m model_wrappers``) on 127.0.0.1, on a port of the kernel's choosing."""

    def __init__(self, model_uri: str, model_name: str, timeout_s: float = 300.0) -> None:
        """Serve ``model_uri`` under ``model_name`` once started."""
        self.model_uri = model_uri
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.work = Path(tempfile.mkdtemp(prefix="batch-model-"))
        self.url = ""

    def start(self) -> InPodModelServer:
        """Fetch the model, start the server and wait until the model is ready.

        Raises:
            OperationTimeoutError: the server did not get ready in time (its log tail is in the message).
        """
        model_dir = fetch_model(self.model_uri, self.work / "model")
        port_file, log_path = self.work / "ports.json", self.work / "server.log"
        command = [sys.executable, "-m", "model_wrappers", "--model-dir", str(model_dir)]
        command += ["--model-name", self.model_name, "--http-port", "0", "--port-file", str(port_file)]
        process = self._process = launch(command, log_path=log_path)
        port = wait_for(lambda: port_from_file(port_file), timeout_s=self.timeout_s, what="model server",
                        process=process)  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        wait_ready(process, self._ready, log_path=log_path, what="model server", timeout_s=self.timeout_s)
        return self

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/v2/models/{self.model_name}/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False
