"""A minimal KServe V2 (open inference protocol) REST client for verification."""

from __future__ import annotations

from typing import Any

import numpy as np
import requests

from model_packaging.dtypes import mapping_for, v2_to_numpy
from serving_core.errors import RemoteServiceError, UnreachableError


def v2_request(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """A V2 infer request body with one flat ``data`` list per input."""
    body_inputs = []
    for name, array in inputs.items():
        datatype = mapping_for(array.dtype, where=f"input {name!r}").v2
        data = [str(value) for value in array.ravel()] if datatype == "BYTES" else array.ravel().tolist()
        body_inputs.append({"name": name, "shape": list(array.shape), "datatype": datatype, "data": data})
    return {"inputs": body_inputs}


def v2_outputs(body: dict[str, Any]) -> dict[str, np.ndarray]:
    """Outputs of a V2 infer response as arrays of their declared dtype and shape."""
    outputs = {}
    for output in body.get("outputs", []):
        dtype = object if output["datatype"] == "BYTES" else v2_to_numpy(output["datatype"])
        outputs[output["name"]] = np.asarray(output["data"], dtype=dtype).reshape(output["shape"])
    return outputs


def v2_infer(url: str, inputs: dict[str, np.ndarray], timeout_s: float = 60.0) -> dict[str, np.ndarray]:
    """POST a V2 request to ``url`` and decode the outputs.

    Raises:
        UnreachableError: nothing answered at ``url``.
        RemoteServiceError: the server answered with an error status.
    """
    try:
        response = requests.post(url, json=v2_request(inputs), timeout=timeout_s)
    except requests.RequestException as error:
        raise UnreachableError(f"no answer from {url}: {error}", hint="check that the server is running") from error
    if response.status_code != 200:
        raise RemoteServiceError(
            f"{url} answered {response.status_code}: {response.text[:500]}",
            hint="read the server log for the cause",
        )
    return v2_outputs(response.json())
