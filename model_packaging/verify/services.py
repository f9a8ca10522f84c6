"""Runtime servers a verification may use, started on first use and shared across packages."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from model_packaging.verify import torchserve_server, triton_validator
from model_packaging.verify.torchserve_server import TorchServeServer
from model_packaging.verify.triton_validator import TritonValidator


class RuntimeServices:
    """Lazily started tritonserver (config validator) and TorchServe; stopped on close."""

    def __init__(self, work_dir: Path | None = None) -> None:
        """Servers keep their state and logs under ``work_dir`` (a temporary directory by default)."""
        self._owned_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="aiserving-verify-"))
        self._triton: TritonValidator | None = None
        self._torchserve: TorchServeServer | None = None

    def triton(self) -> TritonValidator | str:
        """The running validator, or why there is none."""
        if self._triton is None:
            install = triton_validator.find_tritonserver()
            if install is None:
                return triton_validator.missing_reason()
            directory = self.work_dir / "triton"
            directory.mkdir(parents=True, exist_ok=True)
            self._triton = TritonValidator(install, directory).start()
        return self._triton

    def torchserve(self) -> TorchServeServer | str:
        """The running TorchServe, or why there is none."""
        if self._torchserve is None:
            if reason := torchserve_server.missing_reason():
                return reason
            directory = self.work_dir / "torchserve"
            directory.mkdir(parents=True, exist_ok=True)
            self._torchserve = TorchServeServer(directory).start()
        return self._torchserve

    def close(self) -> None:
        """Stop every server that was started."""
        for server in (self._triton, self._torchserve):
            if server is not None:
                server.stop()
        self._triton = self._torchserve = None
        if self._owned_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> RuntimeServices:
        """Use in a ``with`` block."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop servers on leaving the block."""
        self.close()
