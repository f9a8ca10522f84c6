"""TorchServe handler shipped inside each ``.mar``: KServe V2 JSON in, V2 JSON out, over TorchScript.

TorchServe imports this file on its own, so it depends only on torch, numpy and the standard library.
``io.json`` next to ``model.pt`` names the inputs and outputs with their V2 datatypes and shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

# V2 datatype → numpy dtype for the types torch tensors hold: a copy of part of serving_core.dtypes,
# which TorchServe cannot import; tests/unit/test_dtype_table.py keeps the two equal.
_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
_STATE: dict[str, Any] = {}


def _initialize(context: Any) -> None:
    model_dir = Path(context.system_properties["model_dir"])
    model = torch.jit.load(str(model_dir / "model.pt"), map_location="cpu")  # type: ignore[no-untyped-call]
    _STATE["model"] = model.eval()
    _STATE["io"] = json.loads((model_dir / "io.json").read_text(encoding="utf-8"))
    _STATE["name"] = context.manifest["model"]["modelName"]


def _request_body(row: dict[str, Any]) -> dict[str, Any]:
    body = row.get("data") or row.get("body")
    if isinstance(body, (bytes, bytearray)):
        body = json.loads(body.decode("utf-8"))
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ValueError('expected a KServe V2 request body {"inputs": [{"name", "shape", "datatype", "data"}]}')
    return body


def _input_tensor(spec: dict[str, Any], given: dict[str, Any]) -> torch.Tensor:
    if given.get("datatype") != spec["datatype"]:
        raise ValueError(f"input {spec['name']!r} must have datatype {spec['datatype']}, got {given.get('datatype')}")
    array = np.asarray(given["data"], dtype=_NUMPY[spec["datatype"]]).reshape(given["shape"])
    return torch.from_numpy(array)


def _infer(body: dict[str, Any]) -> dict[str, Any]:
    specs = _STATE["io"]["inputs"]
    by_name = {item.get("name"): item for item in body["inputs"]}
    given = [by_name.get(spec["name"], item) for spec, item in zip(specs, body["inputs"], strict=False)]
    if len(given) != len(specs):
        raise ValueError(f"expected inputs {[spec['name'] for spec in specs]}, got {list(by_name)}")
    with torch.no_grad():
        result = _STATE["model"](*[_input_tensor(spec, item) for spec, item in zip(specs, given, strict=True)])
    results = result if isinstance(result, (tuple, list)) else [result]
    outputs = []
    for spec, tensor in zip(_STATE["io"]["outputs"], results, strict=True):
        array = tensor.detach().cpu().numpy()
        shape = list(array.shape)
        data = array.ravel().tolist()
        outputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": shape, "data": data})
    response: dict[str, Any] = {"model_name": _STATE["name"], "outputs": outputs}
    if body.get("id"):
        response["id"] = body["id"]
    return response


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[dict[str, Any]] | None:
    """TorchServe entry point: one V2 response per request in the batch."""
    if "model" not in _STATE:
        _initialize(context)
    if data is None:
        return None
    return [_infer(_request_body(row)) for row in data]
