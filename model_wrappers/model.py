"""The ``kserve.Model`` serving an MLflow pyfunc: signature-checked decode, batched predict, V1/V2 encode.

:meth:`MlflowPyfuncModel.infer` is the one inference path: KServe's REST and gRPC handlers reach it
through :meth:`MlflowPyfuncModel.predict`, the lean JSON route (:mod:`model_wrappers.fast_path`) directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any, Protocol, TypeVar

import kserve
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest

from model_wrappers.batching import AdaptiveBatcher, DrainingError
from model_wrappers.decode import Arrays, decode_v1, decode_v2, model_input, row_count
from model_wrappers.encode import prediction_arrays, v1_response, v2_response
from model_wrappers.instrumentation import ArrivalTracker
from model_wrappers.loading import LoadedModel, load_model
from model_wrappers.metrics import ServingMetrics, is_class_output
from model_wrappers.signature import FieldSpec, ModelIO
from serving_core.errors import InvalidInputError

logger = logging.getLogger(__name__)

SHUTTING_DOWN = "The model server is shutting down; retry the request (another replica can serve it)."

_Response = TypeVar("_Response")
_Response_co = TypeVar("_Response_co", covariant=True)


class InferenceRequest(Protocol[_Response_co]):
    """One inference request in the caller's protocol: decoded by the signature, its outputs encoded back."""

    def decode(self, io: ModelIO) -> Arrays:
        """The request's inputs as named arrays with rows on axis 0.

        Raises:
            InvalidInputError: the request does not match the signature.
        """

    def encode(self, outputs: Arrays) -> _Response_co:
        """The response body for exactly this request's rows of the outputs."""


class _KServeRequest:
    """A payload from KServe's handlers: an ``InferRequest`` (V2 REST, gRPC) or a V1 JSON document."""

    def __init__(self, payload: Any, model_name: str) -> None:
        self.payload = payload
        self.model_name = model_name

    def decode(self, io: ModelIO) -> Arrays:
        if isinstance(self.payload, InferRequest):
            return decode_v2(self.payload, io)
        return decode_v1(self.payload, io)

    def encode(self, outputs: Arrays) -> Any:
        if isinstance(self.payload, InferRequest):
            return v2_response(outputs, self.model_name, self.payload)
        return v1_response(outputs)


def _describe(fields: tuple[FieldSpec, ...]) -> str:
    return ", ".join(f"{field.name} {field.datatype} {list(field.shape)}" for field in fields) or "from the request"


def _rows_of(example: Any) -> int:
    if isinstance(example, dict):
        example = next(iter(example.values()))
    return len(example)


class MlflowPyfuncModel(kserve.Model):  # type: ignore[misc]
    """An MLflow pyfunc behind KServe's V1/V2 REST and gRPC endpoints.

    ``load()`` loads the pyfunc and runs a warm-up prediction; only then does the model report
    ready. It is safe to call more than once: later calls return at once.
    """

    def __init__(
        self,
        name: str,
        model_dir: Path,
        *,
        max_batch_size: int,
        max_latency_s: float,
        metrics: ServingMetrics,
        arrivals: ArrivalTracker,
    ) -> None:
        """Describe the model; nothing is loaded until :meth:`load`."""
        super().__init__(name)
        self.model_dir = model_dir
        self.metrics = metrics
        self.arrivals = arrivals
        self.batcher = AdaptiveBatcher(
            self._predict_rows,
            max_batch_size=max_batch_size,
            max_latency_s=max_latency_s,
            metrics=metrics,
            pending_arrivals=lambda: arrivals.arriving,
            # Without batching every predict holds one request: a predict thread would only add GIL hand-offs.
            predict_on_loop=max_batch_size == 1,
        )
        self._loaded: LoadedModel | None = None
        self._load_started = threading.Event()
        self._stopping = False
        self.ready = False

    @property
    def io(self) -> ModelIO:
        """Inputs and outputs from the signature (only once loaded)."""
        if self._loaded is None:
            raise ModelNotReady(self.name)
        return self._loaded.io

    def load(self) -> bool:
        """Load the pyfunc and warm it up; readiness turns true only when the warm-up prediction succeeds."""
        if self._load_started.is_set():
            return bool(self.ready)
        self._load_started.set()
        loaded = load_model(self.model_dir)
        self._loaded = loaded
        logger.info(
            "model %s inputs: %s; outputs: %s", self.name, _describe(loaded.io.inputs), _describe(loaded.io.outputs)
        )
        if loaded.warmup_input is None:
            logger.warning("model %s has no signature and no input example: ready without a warm-up", self.name)
        else:
            rows = _rows_of(loaded.warmup_input)
            prediction_arrays(loaded.pyfunc.predict(loaded.warmup_input), loaded.io, rows)
            logger.info("model %s warmed up on %d row(s) on %s", self.name, rows, loaded.device.device)
        self.ready = True
        return True

    def stop(self) -> None:
        """Report not ready (shutdown has begun); queued batches still finish."""
        self._stopping = True
        self.ready = False

    @property
    def stopping(self) -> bool:
        """Whether shutdown has begun."""
        return self._stopping

    def not_ready(self) -> ModelNotReady:
        """The error refusing inference now: still warming up, or shutting down (a retry elsewhere helps)."""
        return ModelNotReady(self.name, SHUTTING_DOWN if self._stopping else None)

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 metadata inputs from the signature."""
        return [field.metadata() for field in self.io.inputs]

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 metadata outputs from the signature."""
        return [field.metadata() for field in self.io.outputs]

    def _predict_rows(self, arrays: Arrays, rows: int) -> Arrays:
        """One predict call on stacked rows (runs in the predict thread)."""
        assert self._loaded is not None  # callers only get here once ready
        prediction = self._loaded.pyfunc.predict(model_input(self._loaded.io, arrays))
        outputs = prediction_arrays(prediction, self._loaded.io, rows)
        first = next(iter(outputs.values()))
        if is_class_output(first):
            self.metrics.count_classes(first.reshape(-1))
        return outputs

    async def infer(self, request: InferenceRequest[_Response]) -> _Response:
        """Check readiness, decode by the signature, wait for this request's rows from a batch, encode.

        Raises:
            ModelNotReady: not warmed up yet, or shutting down (REST 503, gRPC ``UNAVAILABLE``).
            InvalidInput: the request does not match the signature (REST 400, gRPC ``INVALID_ARGUMENT``).
        """
        return request.encode(await self.enqueue(request))

    def enqueue(self, request: InferenceRequest[Any]) -> asyncio.Future[Arrays]:
        """The first half of :meth:`infer`: check readiness, decode, queue; the future holds this request's rows.

        The caller encodes the outputs with ``request.encode``. For callers that answer from a
        callback rather than a task (:mod:`model_wrappers.lean_http`).

        Raises:
            ModelNotReady: not warmed up yet, or shutting down.
            InvalidInput: the request does not match the signature.
        """
        if not self.ready:
            raise self.not_ready()
        try:
            arrays = request.decode(self.io)
        except InvalidInputError as error:
            raise InvalidInput(str(error)) from error
        self.arrivals.queued()
        try:
            return self.batcher.enqueue(arrays, row_count(arrays))
        except DrainingError as error:
            raise ModelNotReady(self.name, SHUTTING_DOWN) from error

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """KServe's entry (V1, V2 REST and gRPC): :meth:`infer`, answered in the caller's protocol."""
        return await self.infer(_KServeRequest(payload, self.name))
