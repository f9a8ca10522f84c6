"""A lean route for JSON inference on REST, in front of KServe's FastAPI router.

Routing, pydantic validation and ``jsonable_encoder`` cost more CPU per request than
a batched predict row (measured in ``benchmarks/serving.py``). This ASGI middleware
answers ``POST /v2/models/NAME/infer`` and ``POST /v1/models/NAME:predict`` with a JSON
body directly: same URLs, bodies, responses and error format (``{"error": ...}``) as
KServe's handlers. Everything else — the binary tensor extension, CloudEvents, other
content types, health, metadata, metrics, other model names — goes to KServe unchanged.
Readiness, decoding, batching and encoding are :meth:`MlflowPyfuncModel.infer`, shared with KServe's
handlers; this route only parses the raw body, falls back to KServe, and writes the response.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import orjson
from kserve.errors import InvalidInput, ModelNotReady
from kserve.utils.numpy_codec import to_np_dtype

from model_wrappers.decode import Arrays, V2Tensor, decode_v1, decode_v2_tensors
from model_wrappers.encode import v1_response
from model_wrappers.instrumentation import AsgiApp, Message, Receive, Scope, Send
from model_wrappers.model import MlflowPyfuncModel
from model_wrappers.signature import ModelIO, v2_datatype
from serving_core.errors import InvalidInputError

logger = logging.getLogger(__name__)

_BINARY_HEADER = b"inference-header-content-length"


class Fallback(Exception):
    """The request needs a KServe feature the lean route does not implement."""


def takes_headers(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the lean route answers a request with these (lower-case) headers: plain JSON, no CloudEvent."""
    content_type = b""
    for name, value in headers:
        if name == b"content-type":
            content_type = value.split(b";")[0].strip()
        elif name == _BINARY_HEADER or name.startswith(b"ce-"):
            return False
    return content_type == b"application/json"


def error_answer(error: Exception) -> tuple[int, dict[str, str]]:
    """The status and ``{"error": ...}`` body KServe's handlers answer ``error`` with."""
    if isinstance(error, InvalidInput):
        return 400, {"error": str(error)}
    if isinstance(error, ModelNotReady):  # also while shutting down, as on KServe's route
        return 503, {"error": str(error)}
    # The model failed: the caller gets KServe's 500 body.
    logger.error("inference failed: %s", error, exc_info=error)
    return 500, {"error": f"{type(error).__name__} : {error}"}


def _json_tensor(item: Any, position: int) -> V2Tensor:
    if not isinstance(item, Mapping):
        raise InvalidInputError(f"inputs[{position}] must be an object with name, shape, datatype and data")
    name, shape, datatype, data = (item.get(key) for key in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise InvalidInputError(f"inputs[{position}] needs a string 'name' and 'datatype'")
    if not isinstance(shape, list) or not all(isinstance(dim, int) for dim in shape):
        raise InvalidInputError(f"input {name!r}: 'shape' must be a list of integers")
    if "parameters" in item and isinstance(item["parameters"], Mapping) and "binary_data_size" in item["parameters"]:
        raise Fallback
    if data is None:
        raise InvalidInputError(f"input {name!r} has no 'data'")
    dtype = to_np_dtype(datatype)
    if dtype is None:
        raise InvalidInputError(f"input {name!r} has unknown datatype {datatype!r}")
    return V2Tensor(name, datatype, shape, lambda: np.asarray(data, dtype=dtype).reshape(shape))


def _wants_binary_outputs(body: Mapping[str, Any]) -> bool:
    parameters = body.get("parameters")
    if isinstance(parameters, Mapping) and parameters.get("binary_data_output"):
        return True
    outputs = body.get("outputs")
    return isinstance(outputs, list) and any(
        isinstance(output, Mapping) and isinstance(output.get("parameters"), Mapping) for output in outputs
    )


def _json_data(array: np.ndarray[Any, Any]) -> list[Any]:
    if array.dtype.kind == "M":
        return np.datetime_as_string(array).ravel().tolist()
    flat = array.ravel().tolist()
    if array.dtype.kind in ("O", "S"):
        return [item.decode("utf-8") if isinstance(item, bytes) else str(item) for item in flat]
    return flat


def v2_json_response(outputs: Arrays, model_name: str, request_id: str) -> dict[str, Any]:
    """The V2 REST response body, key for key what KServe's handler returns."""
    return {
        "model_name": model_name,
        "model_version": None,
        "id": request_id,
        "parameters": None,
        "outputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": v2_datatype(array.dtype),
                "parameters": None,
                "data": _json_data(array),
            }
            for name, array in outputs.items()
        ],
    }


class JsonRequest:
    """One JSON body on the lean route, decoded and answered as KServe's V1 or V2 REST handler would."""

    def __init__(self, body: bytes, *, v2: bool, model_name: str) -> None:
        self.body = body
        self.v2 = v2
        self.model_name = model_name
        self.request_id = ""

    def decode(self, io: ModelIO) -> Arrays:
        """Parse the body and decode it by the signature.

        Raises:
            InvalidInput: the body is not JSON.
            InvalidInputError: the document does not match the signature.
            Fallback: the request asks for binary outputs (KServe's handler encodes those).
        """
        try:
            document = orjson.loads(self.body)
        except orjson.JSONDecodeError as error:
            raise InvalidInput(f"Unrecognized request format: {error}") from error
        if not self.v2:
            return decode_v1(document, io)
        if not isinstance(document, Mapping) or not isinstance(document.get("inputs"), list):
            raise InvalidInputError("a V2 request needs a JSON object with an 'inputs' list")
        if _wants_binary_outputs(document):
            raise Fallback
        request_id = document.get("id")
        self.request_id = request_id if isinstance(request_id, str) else ""
        return decode_v2_tensors([_json_tensor(item, position) for position, item in enumerate(document["inputs"])], io)

    def encode(self, outputs: Arrays) -> dict[str, Any]:
        """The V2 or V1 JSON response body."""
        if self.v2:
            return v2_json_response(outputs, self.model_name, self.request_id)
        return v1_response(outputs)


class FastInferenceRoute:
    """ASGI middleware answering JSON V1/V2 inference for one model; everything else passes through."""

    def __init__(self, app: AsgiApp, *, model: MlflowPyfuncModel) -> None:
        """Route ``model``'s JSON inference requests past KServe's router."""
        self.app = app
        self.model = model
        self._v2_path = f"/v2/models/{model.name}/infer"
        self._v1_path = f"/v1/models/{model.name}:predict"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve or pass through."""
        path = scope.get("path")
        if scope["type"] != "http" or scope.get("method") != "POST" or path not in (self._v2_path, self._v1_path):
            await self.app(scope, receive, send)
            return
        if not takes_headers(scope.get("headers") or []):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        request = JsonRequest(body, v2=path == self._v2_path, model_name=self.model.name)
        try:
            status, answer = 200, await self.model.infer(request)
        except Fallback:
            await self.app(scope, _replay(body), send)
            return
        except Exception as error:
            status, answer = error_answer(error)
        payload = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
