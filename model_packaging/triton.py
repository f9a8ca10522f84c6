"""Triton model repository: ``<name>/config.pbtxt`` and ``<name>/1/model.*``."""

from __future__ import annotations

import shutil
from pathlib import Path

from model_packaging.manifest import ModelFormat
from model_packaging.onnx_io import onnx_graph_specs
from model_packaging.request import BuiltPackage, PackageRequest
from model_packaging.savedmodel import savedmodel_specs, write_savedmodel
from model_packaging.sklearn_onnx import stack_columns, write_sklearn_onnx
from model_packaging.source import SourceModel
from model_packaging.support import Conversion
from model_packaging.torchscript import torchscript_package
from model_packaging.triton_config import TritonModelConfig, choose_max_batch_size, triton_tensors

VERSION_DIR = "1"
CONFIG_FILE = "config.pbtxt"
# platform, model file under the version directory, KServe modelFormat (the runtime lists these versions)
_PLATFORMS = {
    "onnx": ("onnxruntime_onnx", "model.onnx", ModelFormat(name="onnx", version="1")),
    "sklearn": ("onnxruntime_onnx", "model.onnx", ModelFormat(name="onnx", version="1")),
    "pytorch": ("pytorch_libtorch", "model.pt", ModelFormat(name="pytorch", version="1")),
    "tensorflow": ("tensorflow_savedmodel", "model.savedmodel", ModelFormat(name="tensorflow", version="2")),
    "keras": ("tensorflow_savedmodel", "model.savedmodel", ModelFormat(name="tensorflow", version="2")),
}


def model_file(manifest_name: str, flavor: str) -> str:
    """Relative path of the model file inside a Triton package."""
    return f"{manifest_name}/{VERSION_DIR}/{_PLATFORMS[flavor][1]}"


def _signature_names(source: SourceModel) -> tuple[list[str], list[str]]:
    signature = source.signature
    if signature is None:
        return [], []
    return [entry.name for entry in signature.inputs], [entry.name for entry in signature.outputs]


def build_triton(source: SourceModel, pair: Conversion, request: PackageRequest, staging: Path) -> BuiltPackage:
    """Write the Triton repository for ``source`` into ``staging``."""
    platform, file_name, model_format = _PLATFORMS[pair.flavor]
    version_dir = staging / request.name / VERSION_DIR
    version_dir.mkdir(parents=True)
    target = version_dir / file_name
    signature_inputs, signature_outputs = _signature_names(source)
    if pair.flavor == "onnx":
        shutil.copyfile(source.path / str(source.flavors["onnx"]["data"]), target)
        conversion = "ONNX model copied"
        inputs, outputs = onnx_graph_specs(target, signature_inputs, signature_outputs)
    elif pair.flavor == "sklearn":
        write_sklearn_onnx(source, target)
        conversion = "sklearn converted to ONNX with skl2onnx (zipmap=False)"
        inputs, outputs = onnx_graph_specs(target, signature_inputs, signature_outputs)
        inputs = stack_columns(inputs, source.signature)
    elif pair.flavor == "pytorch":
        conversion, inputs, outputs = torchscript_package(source, target)
    else:
        conversion = write_savedmodel(source, pair.flavor, target)
        inputs, outputs = savedmodel_specs(target, signature_inputs, signature_outputs)
    max_batch_size = choose_max_batch_size(request.max_batch_size, inputs + outputs)
    config = TritonModelConfig(
        name=request.name,
        platform=platform,
        max_batch_size=max_batch_size,
        inputs=triton_tensors(inputs, max_batch_size),
        outputs=triton_tensors(outputs, max_batch_size),
        instance_kind=request.instance_kind,
    )
    (staging / request.name / CONFIG_FILE).write_text(config.render(), encoding="utf-8")
    return BuiltPackage(
        inputs=inputs,
        outputs=outputs,
        max_batch_size=max_batch_size,
        model_format=model_format,
        protocol_version="v2",
        conversion=conversion,
    )
