"""``aiserving size``: the GPU memory estimate of a package directory or a registered model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gpu_planning.catalog import gpu_product
from gpu_planning.estimate import MemoryEstimate, estimate, recommend
from mlflow_source import RegistryConnection
from serving_core.errors import InvalidInputError, UnsupportedError


def size_model(
    target: str, *, max_batch_size: int | None, gpu: str | None, connection: RegistryConnection | None = None
) -> MemoryEstimate:
    """Estimate ``target`` (a package or MLflow model directory, or a models:/ URI, downloaded to a temporary dir).

    ``gpu`` narrows the recommendations to one catalog product.

    Raises:
        InvalidInputError: unknown GPU product, a bad batch size or a directory that is not a model.
        UnsupportedError: the model fits no GPU of the catalog (or not the one asked for).
    """
    product = gpu_product(gpu) if gpu is not None else None  # an unknown product fails before any download
    if target.startswith("models:/"):
        from mlflow_source import download_model

        if connection is None:
            raise InvalidInputError(f"{target} needs an MLflow registry", hint="pass --tracking-uri")
        with tempfile.TemporaryDirectory(prefix="aiserving-size-") as tmp:
            download_model(target, Path(tmp) / "model", connection)
            result = estimate(Path(tmp) / "model", max_batch_size=max_batch_size)
    else:
        result = estimate(Path(target), max_batch_size=max_batch_size)
    if product is not None:
        only = recommend(product, result.need_mib)
        result = result.model_copy(
            update={"recommendations": [only], "smallest": None if only.unit == "none" else only}
        )
    if result.smallest is None:
        where = product.name if product is not None else "any GPU of the catalog"
        raise UnsupportedError(
            f"{result.model} needs {result.need_mib} MiB with headroom, more than {where} has\n{result.table()}",
            hint="lower --max-batch-size, quantize the weights (fp16/int8) or shard the model",
        )
    return result
