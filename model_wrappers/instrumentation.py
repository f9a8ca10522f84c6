"""Count inference requests by protocol and status where they enter: an ASGI middleware and a gRPC interceptor.

Both also tell the batcher how many requests are being received but not yet queued
(:class:`ArrivalTracker`), so a batch waits for callers only when some are on their way.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from model_wrappers.metrics import ServingMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_V1_PREDICT = re.compile(r"^/v1/models/[^/]+:predict$")
_V2_INFER = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$")
_GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class Arrival:
    """One inference request between arrival and the batch queue."""

    queued: bool = False


_current_arrival: contextvars.ContextVar[Arrival | None] = contextvars.ContextVar("arrival", default=None)


class ArrivalTracker:
    """How many inference requests have arrived but are not in the batch queue yet (event-loop thread only).

    Tasks use :meth:`arrive`, :meth:`queued` and :meth:`leave` (the request's context carries its
    arrival); callbacks without a task of their own hold the :class:`Arrival` from :meth:`begin`.
    """

    def __init__(self) -> None:
        """Start with nobody on the way."""
        self._arriving = 0

    @property
    def arriving(self) -> int:
        """Requests being received or decoded."""
        return self._arriving

    def begin(self) -> Arrival:
        """A request entered; :meth:`end` it once it is queued or has failed."""
        self._arriving += 1
        return Arrival()

    def end(self, arrival: Arrival) -> None:
        """The request reached the batch queue or failed before it (idempotent)."""
        if not arrival.queued:
            arrival.queued = True
            self._arriving -= 1

    def arrive(self) -> contextvars.Token[Arrival | None]:
        """A request entered the current task; the returned token ends it in :meth:`leave`."""
        return _current_arrival.set(self.begin())

    def queued(self) -> None:
        """The current task's request reached the batch queue."""
        arrival = _current_arrival.get()
        if arrival is not None:
            self.end(arrival)

    def leave(self, token: contextvars.Token[Arrival | None]) -> None:
        """The request finished, queued or not (a decode error never queues)."""
        self.queued()
        _current_arrival.reset(token)


def rest_protocol(path: str) -> str | None:
    """``v1`` or ``v2`` for an inference path; ``None`` for health, metadata and metrics."""
    if _V2_INFER.match(path):
        return "v2"
    if _V1_PREDICT.match(path):
        return "v1"
    return None


class RestInstrumentation:
    """Pure ASGI middleware (no extra task per request) counting V1/V2 inference requests."""

    def __init__(self, app: AsgiApp, *, metrics: ServingMetrics, arrivals: ArrivalTracker) -> None:
        """Wrap ``app``."""
        self.app = app
        self.metrics = metrics
        self.arrivals = arrivals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and record its status code."""
        protocol = rest_protocol(scope["path"]) if scope["type"] == "http" else None
        if protocol is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app raises before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        token = self.arrivals.arrive()
        try:
            await self.app(scope, receive, record_status)
        finally:
            self.arrivals.leave(token)
            self.metrics.observe_request(protocol, str(status), time.perf_counter() - started)


class GrpcInstrumentation(aio.ServerInterceptor):  # type: ignore[misc]
    """gRPC interceptor counting ``ModelInfer`` calls by status code name (``OK``, ``INVALID_ARGUMENT``, ...)."""

    def __init__(self, *, metrics: ServingMetrics, arrivals: ArrivalTracker) -> None:
        """Record into ``metrics``."""
        self.metrics = metrics
        self.arrivals = arrivals

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap the unary ``ModelInfer`` handler; pass every other method through."""
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method != _GRPC_INFER or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary

        async def observed(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            token = self.arrivals.arrive()
            code = "OK"
            try:
                return await behavior(request, context)
            except BaseException:
                status = context.code()
                code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                self.arrivals.leave(token)
                self.metrics.observe_request("grpc-v2", code, time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
