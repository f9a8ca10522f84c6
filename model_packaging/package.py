"""``aiserving package``: one MLflow model in, one verified-ready runtime layout out."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlflow_source import RegistryConnection
from model_packaging.digest import package_digest
from model_packaging.manifest import RUNTIMES, InstanceKind, PackageManifest, Runtime
from model_packaging.python_wrapper import build_python
from model_packaging.request import BuiltPackage, PackageRequest
from model_packaging.source import SourceModel, open_source
from model_packaging.support import Conversion, select_conversion
from model_packaging.tfserving import build_tfserving
from model_packaging.torchserve import build_torchserve
from model_packaging.triton import build_triton
from serving_core.errors import InvalidInputError
from serving_core.output_dirs import check_output_dir, staged_output

Builder = Callable[[SourceModel, Conversion, PackageRequest, Path], BuiltPackage]
BUILDERS: dict[Runtime, Builder] = {
    "triton": build_triton,
    "torchserve": build_torchserve,
    "tfserving": build_tfserving,
    "python": build_python,
}
# Valid as a Triton directory, a TorchServe model name and a Kubernetes label value.
_NAME = re.compile(r"^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$")


def default_name(source: SourceModel) -> str:
    """The registered model name, else the directory name, made safe for every runtime."""
    raw = source.reference.registered_name or source.path.name
    cleaned = re.sub(r"[^a-z0-9_.-]+", "-", raw.lower()).strip("-_.")
    return cleaned[:63] or "model"


def check_name(name: str) -> str:
    """Refuse names a runtime would reject.

    Raises:
        InvalidInputError: the name has characters or a length no runtime accepts.
    """
    if not _NAME.match(name):
        raise InvalidInputError(
            f"model name {name!r} is not valid for every runtime",
            hint="use 1-63 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        )
    return name


def check_runtime(runtime: str) -> Runtime:
    """Refuse unknown runtimes.

    Raises:
        InvalidInputError: ``runtime`` is not one we package for.
    """
    for known in RUNTIMES:
        if runtime == known:
            return known
    raise InvalidInputError(f"unknown runtime {runtime!r}", hint=f"use one of {', '.join(RUNTIMES)}")


def package_model(
    model: str,
    runtime: str,
    out: Path,
    *,
    name: str | None = None,
    max_batch_size: int | None = None,
    instance_kind: InstanceKind = "gpu",
    sklearn_to_onnx: bool = False,
    connection: RegistryConnection | None = None,
) -> PackageManifest:
    """Package ``model`` (a directory or ``models:/`` URI) for ``runtime`` into the new or empty ``out``.

    Everything is written to a staging directory next to ``out`` that is renamed into place only
    when the package and its ``package.json`` are complete.

    Raises:
        InvalidInputError: bad directory, name, output directory, missing signature or example.
        UnsupportedError: the flavor x runtime pair or a dtype is not supported.
        NotFoundError: a registered model, version or alias does not exist.
    """
    known_runtime = check_runtime(runtime)
    out = out.absolute()
    check_output_dir(out)
    if name is not None:
        check_name(name)
    with tempfile.TemporaryDirectory(prefix="aiserving-package-") as scratch:
        source = open_source(model, Path(scratch), connection)
        pair = select_conversion(known_runtime, set(source.flavors), sklearn_to_onnx=sklearn_to_onnx)
        request = PackageRequest(
            name=check_name(name or default_name(source)),
            max_batch_size=max_batch_size,
            instance_kind=instance_kind,
        )
        with staged_output(out) as staging:
            built = BUILDERS[known_runtime](source, pair, request, staging)
            manifest = PackageManifest(
                runtime=known_runtime,
                model_name=request.name,
                model_format=built.model_format,
                protocol_version=built.protocol_version,
                source_flavor=pair.flavor,
                conversion=built.conversion,
                inputs=built.inputs,
                outputs=built.outputs,
                max_batch_size=built.max_batch_size,
                instance_kind=instance_kind,
                source=source.reference,
                package_digest=package_digest(staging),
            )
            manifest.write(staging)
    return manifest
