"""Run the model behind KServe's REST app (V1, V2, metrics) and V2 gRPC servicer.

JSON inference on REST takes a lean route (:mod:`model_wrappers.fast_path`) in front of
KServe's router; everything else is KServe's. Every port is bound before serving (0 binds a
free one); the bound ports are logged (``listening on http port N``) and, with a port file,
written as JSON once all of them listen. The HTTP port opens at once so liveness answers
while the model loads; the model reports ready after its warm-up prediction. On SIGTERM or
SIGINT: the REST server stops accepting and waits for in-flight requests, readiness turns
false (inference answers 503, gRPC ``UNAVAILABLE``), gRPC stops with the same grace, and the
batcher finishes every queued batch before the process exits.

Only public KServe API is used: ``ModelServer`` for KServe's process setup and model registry,
``RESTServer.create_application`` for KServe's routes and error handlers, ``DataPlane``,
``InferenceServicer`` and ``ExceptionToStatusInterceptor``. We run the listeners ourselves
(uvicorn and ``grpc.aio``) because ``ModelServer.start`` owns the event loop and the signals,
``RESTServer.start`` takes no socket and offers no stop, and ``GRPCServer`` takes no
interceptors and does not report the port it bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import signal
import socket
import tempfile
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import kserve
import uvicorn
import uvloop
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc import aio
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import ModelNotReady
from kserve.model_server import app as kserve_app
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from model_wrappers.fast_path import FastInferenceRoute
from model_wrappers.instrumentation import ArrivalTracker, GrpcInstrumentation, RestInstrumentation
from model_wrappers.lean_http import LeanHttpProtocol, LeanRoute
from model_wrappers.loading import import_frameworks, read_flavors
from model_wrappers.metrics import ServingMetrics
from model_wrappers.model import MlflowPyfuncModel
from model_wrappers.settings import ServerSettings
from serving_core.errors import AiServingError

logger = logging.getLogger(__name__)

_GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_GRPC_WORKERS = 4
# KServe's RESTServer default: longer than the idle timeout of common load balancers.
_KEEP_ALIVE_S = 65


def write_port_file(path: Path, ports: Mapping[str, int | None]) -> None:
    """Write ``ports`` as a JSON object to ``path`` atomically: readers see no file or all of it."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(dict(ports), file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _listen_http(port: int, backlog: int) -> socket.socket:
    """A listening REST socket on every IPv4 address, as uvicorn binds it (0 binds a free port).

    The protocol is named (``IPPROTO_TCP``, not ``socket.create_server``'s 0) because asyncio turns
    Nagle's algorithm off only on accepted sockets whose protocol says TCP. With Nagle on, uvicorn's
    two writes per response (headers, then body) wait for the client's delayed ACK: about 40 ms per
    request on a keep-alive connection (measured with ``benchmarks/serving.py``). uvloop, which the server
    runs on, turns Nagle off on every TCP socket; the named protocol keeps asyncio's loop right too.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # What socket.create_server does on POSIX: a restarted server rebinds a port still in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(backlog)
    except OSError as error:
        listener.close()
        raise AiServingError(
            f"cannot listen on HTTP port {port}: {error}", hint="pick a free port, or --port 0 for any free one"
        ) from error
    return listener


def _forwarded_allow_ips() -> str:
    """Which proxies' X-Forwarded-For/Proto to trust: uvicorn's own default and environment variable."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def kserve_application(rest: RESTServer, model: MlflowPyfuncModel) -> FastAPI:
    """KServe's FastAPI app with its routes and error handlers, saying why ``model`` refuses inference.

    ``RESTServer.create_application`` wires them onto the process-wide ``kserve.model_server.app``.
    KServe's inference handlers check readiness before the model runs and raise a bare ``ModelNotReady``;
    the handler added here (FastAPI's public API) answers the same 503, naming shutdown as the reason.
    """
    rest.create_application()

    async def not_ready(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, ModelNotReady) and error.model_name == model.name and model.stopping:
            error = model.not_ready()
        return JSONResponse(status_code=HTTPStatus.SERVICE_UNAVAILABLE, content={"error": str(error)})

    app: FastAPI = kserve_app
    app.add_exception_handler(ModelNotReady, not_ready)
    return app


class _ExceptionToStatus(ExceptionToStatusInterceptor):  # type: ignore[misc]
    """KServe's gRPC exception mapping, except that a model not ready answers ``UNAVAILABLE`` with its message.

    KServe 0.21 reads ``ModelNotReady.reason``, which that class lacks, so callers got ``UNKNOWN``
    instead of a retryable status during warm-up and shutdown.
    """

    async def handle_exception(
        self, ex: Exception, request_or_iterator: Any, context: aio.ServicerContext[Any, Any], method_name: str
    ) -> None:
        """Abort the call with the status for ``ex``."""
        if isinstance(ex, ModelNotReady):
            logger.warning("%s: %s", method_name, ex)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(ex))
        else:
            await super().handle_exception(ex, request_or_iterator, context, method_name)


class _GrpcServer:
    """V2 gRPC on KServe's servicer, with our counting interceptor in front of the exception mapping."""

    def __init__(
        self,
        port: int,
        dataplane: DataPlane,
        repository: ModelRepositoryExtension,
        instrumentation: GrpcInstrumentation,
        grace_s: int,
    ) -> None:
        self.port = port
        self._dataplane = dataplane
        self._repository = repository
        self._instrumentation = instrumentation
        self._grace_s = grace_s
        self._server: aio.Server | None = None

    async def start(self) -> int:
        """Listen on the port (0: a free one) and serve in the background; returns the bound port.

        Raises:
            AiServingError: the port cannot be bound.
        """
        server = aio.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=_GRPC_WORKERS),
            interceptors=(self._instrumentation, _ExceptionToStatus()),
            options=[
                ("grpc.max_send_message_length", _GRPC_MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", _GRPC_MAX_MESSAGE_BYTES),
            ],
        )
        servicer = InferenceServicer(self._dataplane, self._repository)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
        try:
            bound = int(server.add_insecure_port(f"[::]:{self.port}"))
        except RuntimeError as error:
            raise AiServingError(
                f"cannot listen on gRPC port {self.port}: {error}",
                hint="pick a free port, or --grpc-port 0 for any free one",
            ) from error
        await server.start()
        self._server = server
        return bound

    async def stop(self) -> None:
        """Refuse new calls and wait up to the grace period for in-flight ones."""
        if self._server is not None:
            await self._server.stop(self._grace_s)


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
        # KServe's process setup (its loggers, the predictor context) and its model registry.
        model_server = kserve.ModelServer()
        model_server.register_model(self.model)
        dataplane = _ModelAwareDataPlane(model_registry=model_server.registered_models)
        repository = model_server.model_repository_extension
        # Only for its routes and error handlers (kserve_application). Its own uvicorn server (and the
        # port given here) stays unused: we serve on a socket we bound.
        kserve_rest = RESTServer(
            FASTAPI_APP_IMPORT_STRING, dataplane, repository, settings.http_port, grace_period=settings.grace_period_s
        )
        # uvicorn's X-Forwarded-* handling, which it would put in front of every request (parsing the trusted
        # addresses each time), goes around KServe's routes only: the lean route never reads the client address.
        # (Any: uvicorn and FastAPI type the same ASGI calls differently.)
        kserve_app_any: Any = kserve_application(kserve_rest, self.model)
        kserve_routes: Any = ProxyHeadersMiddleware(kserve_app_any, trusted_hosts=_forwarded_allow_ips())
        # In front of the FastAPI app, not inside it: FastAPI matches routes (and KServe times every
        # request) before any middleware runs, which costs more than a batched predict row.
        lean_route = FastInferenceRoute(kserve_routes, model=self.model)
        # JSON inference skips even the ASGI app: the protocol answers it from the parser's callbacks.
        # (Any: uvicorn types `http` as a protocol class; it only calls it with keyword arguments.)
        lean_protocol: Any = functools.partial(LeanHttpProtocol, route=LeanRoute(self.model, self.metrics))
        self._http = uvicorn.Server(
            uvicorn.Config(
                RestInstrumentation(lean_route, metrics=self.metrics, arrivals=self.arrivals),
                http=lean_protocol,
                log_config=None,  # logging is configured by our entry point and KServe, not uvicorn
                # Off, not just filtered (run() quiets the logger): uvicorn formats the client address and
                # path for every access log call before the logger's level is checked.
                access_log=False,
                timeout_graceful_shutdown=settings.grace_period_s,
                timeout_keep_alive=_KEEP_ALIVE_S,
                proxy_headers=False,  # kserve_routes has it
            )
        )
        self._grpc = (
            _GrpcServer(
                settings.grpc_port,
                dataplane,
                repository,
                GrpcInstrumentation(metrics=self.metrics, arrivals=self.arrivals),
                settings.grace_period_s,
            )
            if settings.grpc_port is not None
            else None
        )

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then drain and return.

        Raises:
            AiServingError: a port cannot be bound.
        """
        # One log line per request costs more CPU than a small model's predict; the metrics count requests.
        for per_request_logger in ("kserve.trace", "uvicorn.access"):
            logging.getLogger(per_request_logger).setLevel(logging.WARNING)
        import_frameworks(self.settings.model_dir)
        # uvloop, on which KServe's own server runs (KServe's uvicorn[standard] installs it): its event loop,
        # transports and timers are C, where asyncio's run Python code for every request.
        uvloop.run(self._serve())

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: draining, then stopping", signum)
        self.model.stop()
        self._http.should_exit = True  # uvicorn's stop flag: it stops accepting and drains in-flight requests

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.model.load)
        except Exception:
            logger.exception("model %s failed to load or warm up; it stays not ready", self.settings.model_name)

    async def _listen(self) -> tuple[socket.socket, dict[str, int | None]]:
        """Bind every port; the REST socket listens (connections queue until uvicorn accepts them)."""
        http_socket = _listen_http(self.settings.http_port, self._http.config.backlog)
        ports: dict[str, int | None] = {"http": int(http_socket.getsockname()[1]), "grpc": None}
        if self._grpc is not None:
            try:
                ports["grpc"] = await self._grpc.start()
            except BaseException:
                http_socket.close()
                raise
        for kind, port in ports.items():
            if port is not None:
                logger.info("listening on %s port %d", kind, port)
        return http_socket, ports

    async def _serve(self) -> None:
        # uvicorn captures these signals while it runs and re-raises them when it stops;
        # our handler must be in place so the re-raise does not kill the process mid-drain.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        http_socket, ports = await self._listen()
        if self.settings.port_file is not None:
            write_port_file(self.settings.port_file, ports)
        loader = asyncio.create_task(self._load(), name="model-load")
        await self._http.serve(sockets=[http_socket])
        self.model.stop()
        if self._grpc is not None:
            await self._grpc.stop()
        await self.model.batcher.drain()
        loader.cancel()
        logger.info("model server stopped")


def serve(settings: ServerSettings) -> None:
    """Start the wrapper server and block until it has drained after a stop signal.

    Raises:
        AiServingError: the model directory holds no usable model, or a port cannot be bound.
    """
    WrapperServer(settings).run()
