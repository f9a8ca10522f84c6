"""TF Serving layout: an integer version directory holding a SavedModel (``1/saved_model.pb``)."""

from __future__ import annotations

from pathlib import Path

from model_packaging.manifest import ModelFormat
from model_packaging.request import BuiltPackage, PackageRequest
from model_packaging.savedmodel import savedmodel_specs, write_savedmodel
from model_packaging.source import SourceModel
from model_packaging.support import Conversion
from model_packaging.triton_config import choose_max_batch_size

VERSION_DIR = "1"


def build_tfserving(source: SourceModel, pair: Conversion, request: PackageRequest, staging: Path) -> BuiltPackage:
    """Write the SavedModel into ``staging/1`` (TF Serving serves the highest integer version)."""
    conversion = write_savedmodel(source, pair.flavor, staging / VERSION_DIR)
    signature = source.signature
    inputs, outputs = savedmodel_specs(
        staging / VERSION_DIR,
        [entry.name for entry in signature.inputs] if signature else [],
        [entry.name for entry in signature.outputs] if signature else [],
    )
    return BuiltPackage(
        inputs=inputs,
        outputs=outputs,
        max_batch_size=choose_max_batch_size(request.max_batch_size, inputs + outputs),
        model_format=ModelFormat(name="tensorflow", version="2"),
        protocol_version="v1",
        conversion=conversion,
    )
