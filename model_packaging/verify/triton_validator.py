"""Parse generated ``config.pbtxt`` files with the real ``tritonserver`` bundled in nvidia-pytriton.

That build has only the python backend. A config that parses gets as far as looking up its backend,
so "unable to find backend library" means the config is valid; a syntax or schema error fails earlier
("failed to read text proto"). nvidia-pytriton needs numpy<2, so it lives in its own venv
(``make triton-validator`` creates ``.venv-triton``) and runs here as a subprocess.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import requests

from model_packaging.verify.report import CheckResult
from serving_core.processes import LocalProcess, launch, listening_ports, log_tail, wait_ready

TRITON_DIR_ENV = "AISERVING_TRITON_DIR"
_VENV = ".venv-triton"
_BACKEND_MISSING = "unable to find backend library"
CHECK = "config.pbtxt parsed by tritonserver"


def find_tritonserver() -> Path | None:
    """The ``pytriton/tritonserver`` directory: ``$AISERVING_TRITON_DIR``, else ``.venv-triton`` in the cwd.

    ``.venv-triton`` is a development tool (``make triton-validator`` in the checkout); elsewhere set
    ``$AISERVING_TRITON_DIR``. Nothing is looked up relative to this module's location.
    """
    if configured := os.environ.get(TRITON_DIR_ENV):
        return Path(configured) if (Path(configured) / "bin" / "tritonserver").is_file() else None
    for candidate in sorted((Path.cwd() / _VENV).glob("lib/python*/site-packages/pytriton/tritonserver")):
        if (candidate / "bin" / "tritonserver").is_file():
            return candidate
    return None


def missing_reason() -> str:
    """Why the validator cannot run here."""
    return (
        f"no tritonserver binary: set {TRITON_DIR_ENV} to a pytriton/tritonserver directory, or run "
        f"`make triton-validator` in the checkout (nvidia-pytriton in {_VENV}) and run from there"
    )


class TritonValidator(LocalProcess):
    """One ``tritonserver`` in explicit model-control mode; each validation loads one config."""

    def __init__(self, install_dir: Path, work_dir: Path) -> None:
        """Remember where the binary is and where the scratch repository goes."""
        self.install_dir = install_dir
        self.work_dir = work_dir
        self.port = 0  # the HTTP port the kernel gave; known once started

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.work_dir / "tritonserver.log"

    @staticmethod
    def _live(port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> TritonValidator:
        """Start the server on 127.0.0.1 with an empty repository.

        Raises:
            OperationTimeoutError: the server did not come up.
        """
        repository = self.work_dir / "repository"
        repository.mkdir(parents=True, exist_ok=True)
        # --http-port=0 binds a port of the kernel's choosing, but the log names port 0, so the port is read
        # from the process's listening sockets. gRPC is off: only HTTP is used, and two port-0 services are
        # refused as "the same address and port".
        command = [
            str(self.install_dir / "bin" / "tritonserver"),
            f"--model-repository={repository}",
            f"--backend-directory={self.install_dir / 'backends'}",
            "--model-control-mode=explicit",
            "--exit-on-error=false",
            "--http-address=127.0.0.1",
            "--http-port=0",
            "--allow-grpc=false",
            "--allow-metrics=false",
        ]
        process = launch(command, log_path=self.log_path, cwd=self.work_dir)

        def ready() -> bool:
            self.port = next((port for port in sorted(listening_ports(process)) if self._live(port)), 0)
            return self.port != 0

        wait_ready(process, ready, log_path=self.log_path, what="tritonserver", timeout_s=60)
        self._process = process
        return self

    def validate(self, model_dir: Path) -> CheckResult:
        """Load ``model_dir/config.pbtxt`` (with an empty version directory) and classify the answer."""
        name = model_dir.name
        target = self.work_dir / "repository" / name
        shutil.rmtree(target, ignore_errors=True)
        (target / "1").mkdir(parents=True)
        shutil.copyfile(model_dir / "config.pbtxt", target / "config.pbtxt")
        base = f"http://127.0.0.1:{self.port}/v2/repository/models/{name}"
        response = requests.post(f"{base}/load", timeout=60)
        requests.post(f"{base}/unload", timeout=60)
        if response.status_code == 200:
            return CheckResult(CHECK, "passed", "config parsed and the model loaded")
        error = str(response.json().get("error", response.text))
        if _BACKEND_MISSING in error:
            backend = error.split("backend '")[1].split("'")[0] if "backend '" in error else "?"
            return CheckResult(
                CHECK, "passed", f"config parsed and accepted; backend {backend!r} is not in this build (python only)"
            )
        related = [line for line in log_tail(self.log_path, lines=200).splitlines() if name in line]
        return CheckResult(CHECK, "failed", " | ".join([error.strip(), *related[-3:]]))
