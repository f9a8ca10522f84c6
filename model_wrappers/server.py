"""Run the model behind KServe's ModelServer: REST (V1, V2, metrics) and optional V2 gRPC.

JSON inference on REST takes a lean route (:mod:`model_wrappers.fast_path`) in front of
KServe's router; everything else is KServe's. The HTTP port opens at once so liveness
answers while the model loads; the model reports ready after its warm-up prediction.
On SIGTERM or SIGINT: readiness turns false, the REST server stops accepting and waits
for in-flight requests, gRPC stops with the same grace, and the batcher finishes every
queued batch before the process exits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
from types import FrameType
from typing import Any

import kserve
from grpc import aio
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import RESTServer

from model_wrappers.fast_path import FastInferenceRoute
from model_wrappers.instrumentation import ArrivalTracker, GrpcInstrumentation, RestInstrumentation
from model_wrappers.loading import import_frameworks, read_flavors
from model_wrappers.metrics import ServingMetrics
from model_wrappers.model import MlflowPyfuncModel
from model_wrappers.settings import ServerSettings

logger = logging.getLogger(__name__)

_GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class _InstrumentedGrpcServer(GRPCServer):  # type: ignore[misc]
    """KServe's gRPC server with our counting interceptor in front of its exception mapping."""

    def __init__(self, port: int, server: kserve.ModelServer, interceptor: GrpcInstrumentation, grace_s: int) -> None:
        super().__init__(port, server.dataplane, server.model_repository_extension, kwargs={}, grace_period=grace_s)
        self._interceptor = interceptor

    async def start(self, max_workers: int) -> None:
        self._server = aio.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(self._interceptor, ExceptionToStatusInterceptor()),
            options=[
                ("grpc.max_send_message_length", _GRPC_MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", _GRPC_MAX_MESSAGE_BYTES),
            ],
        )
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._server.add_insecure_port(f"[::]:{self._port}")
        logger.info("gRPC (V2) listening on port %d", self._port)
        await self._server.start()
        await self._server.wait_for_termination()


class _ModelAwareDataPlane(DataPlane):  # type: ignore[misc]
    """KServe's data plane, except that server readiness waits for every model's warm-up.

    KServe answers ``GET /v2/health/ready`` (and gRPC ``ServerReady``) with true as soon as the
    process runs; a Kubernetes readiness probe on it would send traffic to a cold model.
    """

    async def ready(self) -> bool:
        models = self.model_registry.get_models().values()
        return bool(models) and all([await model.healthy() for model in models])


class WrapperServer:
    """One MLflow pyfunc served over V1/V2 REST and gRPC with batching and metrics."""

    def __init__(self, settings: ServerSettings) -> None:
        """Check the model directory (before any port opens) and build the model and servers."""
        read_flavors(settings.model_dir)
        self.settings = settings
        self.metrics = ServingMetrics(
            settings.model_name, latency_buckets=settings.latency_buckets, max_batch_size=settings.max_batch_size
        )
        self.arrivals = ArrivalTracker()
        self.model = MlflowPyfuncModel(
            settings.model_name,
            settings.model_dir,
            max_batch_size=settings.max_batch_size,
            max_latency_s=settings.max_latency_ms / 1000,
            metrics=self.metrics,
            arrivals=self.arrivals,
        )
        self._model_server = kserve.ModelServer(
            http_port=settings.http_port,
            grpc_port=settings.grpc_port or 0,
            enable_grpc=settings.grpc_port is not None,
            enable_latency_logging=False,
            grace_period=settings.grace_period_s,
        )
        self._model_server.register_model(self.model)
        self._model_server.dataplane = _ModelAwareDataPlane(model_registry=self._model_server.registered_models)
        self._rest = RESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self._model_server.dataplane,
            self._model_server.model_repository_extension,
            settings.http_port,
            grace_period=settings.grace_period_s,
        )
        self._grpc = (
            _InstrumentedGrpcServer(
                settings.grpc_port,
                self._model_server,
                GrpcInstrumentation(metrics=self.metrics, arrivals=self.arrivals),
                settings.grace_period_s,
            )
            if settings.grpc_port is not None
            else None
        )

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then drain and return."""
        from kserve.model_server import app

        # One log line per request costs more CPU than a small model's predict; the metrics count requests.
        for per_request_logger in ("kserve.trace", "uvicorn.access"):
            logging.getLogger(per_request_logger).setLevel(logging.WARNING)
        # In front of the FastAPI app, not inside it: FastAPI matches routes (and KServe times every
        # request) before any middleware runs, which costs more than a batched predict row.
        lean_route = FastInferenceRoute(app, model=self.model)
        self._rest.config.app = RestInstrumentation(lean_route, metrics=self.metrics, arrivals=self.arrivals)
        import_frameworks(self.settings.model_dir)
        asyncio.run(self._serve())

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: draining, then stopping", signum)
        self.model.stop()
        # RESTServer exposes no stop for the single-process case; uvicorn's own flag drains it.
        self._rest._server.should_exit = True

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.model.load)
        except Exception:
            logger.exception("model %s failed to load or warm up; it stays not ready", self.settings.model_name)

    async def _serve(self) -> None:
        # uvicorn captures these signals while it runs and re-raises them when it stops;
        # our handler must be in place so the re-raise does not kill the process mid-drain.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        loader = asyncio.create_task(self._load(), name="model-load")
        grpc_task: asyncio.Task[Any] | None = None
        if self._grpc is not None:
            grpc_task = asyncio.create_task(self._grpc.start(max_workers=4), name="grpc-server")
        await self._rest.start()
        self.model.stop()
        if self._grpc is not None and grpc_task is not None:
            await self._grpc.stop()
            await asyncio.gather(grpc_task, return_exceptions=True)
        await self.model.batcher.drain()
        loader.cancel()
        logger.info("model server stopped")


def serve(settings: ServerSettings) -> None:
    """Start the wrapper server and block until it has drained after a stop signal."""
    WrapperServer(settings).run()
