"""``package.json``: what a package holds, how to serve it and where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from model_packaging.digest import MANIFEST_FILE
from serving_core.errors import InvalidInputError

Runtime = Literal["triton", "torchserve", "tfserving", "python"]
RUNTIMES: tuple[Runtime, ...] = ("triton", "torchserve", "tfserving", "python")
InstanceKind = Literal["gpu", "cpu"]
# The Python wrapper's settings next to MLmodel (python_wrapper.py writes it, the deploy step reads it).
WRAPPER_SETTINGS_FILE = "wrapper-settings.json"


class TensorSpec(BaseModel):
    """One input or output as the runtime names it.

    ``mlflow_name`` is the signature's name for it; ``mlflow_columns`` lists the signature columns that
    are stacked, in order, into this one tensor (an sklearn model trained on a DataFrame, in ONNX).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    datatype: str
    shape: list[int]
    mlflow_name: str | None = None
    mlflow_columns: list[str] | None = None


class ModelFormat(BaseModel):
    """KServe ``modelFormat``; ``version`` only where the runtime lists one."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str | None = None


class SourceRef(BaseModel):
    """The MLflow model the package was made from."""

    model_config = ConfigDict(frozen=True)

    location: str
    lineage_digest: str
    registered_name: str | None = None
    registered_version: str | None = None
    # The MLflow run that logged the model; deploys stamp it as the run-id annotation.
    run_id: str | None = None


class PackageManifest(BaseModel):
    """The content of ``package.json`` at the package root."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    runtime: Runtime
    model_name: str
    model_format: ModelFormat
    protocol_version: Literal["v1", "v2"]
    source_flavor: str
    conversion: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    max_batch_size: int
    instance_kind: InstanceKind
    source: SourceRef
    package_digest: str

    def write(self, root: Path) -> None:
        """Write ``package.json`` into ``root``."""
        (root / MANIFEST_FILE).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, root: Path) -> PackageManifest:
        """Read ``package.json`` from a package directory.

        Raises:
            InvalidInputError: the file is missing or malformed.
        """
        path = root / MANIFEST_FILE
        if not path.is_file():
            raise InvalidInputError(
                f"{root} has no {MANIFEST_FILE}", hint="pass a directory written by `aiserving package`"
            )
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as error:
            raise InvalidInputError(
                f"{path} is not a valid package manifest: {error}",
                hint="re-create the package with `aiserving package`",
            ) from error
