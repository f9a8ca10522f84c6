"""The server's seams with KServe and uvicorn: what it relies on exists, shutdown answers 503/UNAVAILABLE, port files.

The first tests pin KServe 0.21 and uvicorn API the server builds on (``model_wrappers/server.py``); when an
upgrade breaks one, it fails here with the name of what moved instead of in a running server.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import uvicorn
import uvloop
from fastapi.testclient import TestClient
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InvalidInput, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.model_server import ModelServer
from kserve.model_server import app as kserve_app
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer
from prometheus_client import CollectorRegistry
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from model_wrappers.fast_path import FastInferenceRoute
from model_wrappers.instrumentation import ArrivalTracker
from model_wrappers.metrics import ServingMetrics
from model_wrappers.model import SHUTTING_DOWN, MlflowPyfuncModel
from model_wrappers.server import _ExceptionToStatus, _listen_http, kserve_application, write_port_file
from model_wrappers.signature import FieldSpec, InputKind, ModelIO

NAME = "m"
IO = ModelIO(
    InputKind.TENSOR,
    inputs=(FieldSpec("input_0", "FP64", (-1, 2), np.dtype("float64")),),
    outputs=(FieldSpec("output_0", "FP64", (-1,), np.dtype("float64")),),
)
V2_BODY = {"inputs": [{"name": "input_0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
V1_BODY = {"instances": [[1.0, 2.0]]}


# --- KServe and uvicorn API the server depends on -------------------------------------------------


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_kserve_is_the_pinned_minor() -> None:
    from importlib.metadata import version

    assert version("kserve").startswith("0.21."), "re-check model_wrappers/server.py against the new KServe"


def test_kserve_constructors_the_server_calls() -> None:
    assert parameters(RESTServer)[:4] == ["app", "data_plane", "model_repository_extension", "http_port"]
    assert "grace_period" in parameters(RESTServer)
    assert parameters(RESTServer.create_application) == ["self"]
    assert parameters(InferenceServicer) == ["data_plane", "model_repository_extension"]
    assert parameters(DataPlane) == ["model_registry"]
    assert parameters(ExceptionToStatusInterceptor.handle_exception) == [
        "self",
        "ex",
        "request_or_iterator",
        "context",
        "method_name",
    ]
    server = ModelServer()
    assert isinstance(server.registered_models, ModelRepository)
    assert isinstance(server.model_repository_extension, ModelRepositoryExtension)
    assert callable(server.register_model)


def test_kserve_model_not_ready_still_lacks_reason() -> None:
    # KServe's gRPC mapping reads ModelNotReady.reason; once it exists, _ExceptionToStatus can go.
    assert not hasattr(ModelNotReady(NAME), "reason")


def test_uvicorn_serves_given_sockets_and_stops_on_its_flag() -> None:
    assert "sockets" in parameters(uvicorn.Server.serve)
    server = uvicorn.Server(uvicorn.Config(kserve_app, log_config=None))
    assert server.should_exit is False
    assert isinstance(server.config.backlog, int)


def test_uvicorn_httptools_protocol_the_lean_protocol_extends() -> None:
    # model_wrappers/lean_http.py overrides these parser callbacks, stands in for the request cycle
    # (the attributes uvicorn reads from it) and builds one for requests it hands to the ASGI app.
    from importlib.metadata import version

    assert version("uvicorn").startswith("0.54."), "re-check model_wrappers/lean_http.py against the new uvicorn"
    for callback in ("on_headers_complete", "on_body", "on_message_complete", "on_response_complete"):
        assert parameters(getattr(HttpToolsProtocol, callback))[0] == "self"
    assert parameters(HttpToolsProtocol)[:4] == ["config", "server_state", "app_state", "_loop"]
    assert parameters(HttpToolsProtocol._start_asgi_task) == ["self", "cycle", "app"]
    assert parameters(RequestResponseCycle) == [
        "scope",
        "transport",
        "flow",
        "logger",
        "access_logger",
        "access_log",
        "default_headers",
        "message_event",
        "expect_100_continue",
        "keep_alive",
        "on_response",
    ]
    cycle_source = inspect.getsource(HttpToolsProtocol)
    for attribute in ("response_complete", "disconnected", "keep_alive", "message_event"):
        assert f"self.cycle.{attribute}" in cycle_source
    assert STATUS_LINE[200] == b"HTTP/1.1 200 OK\r\n"


# --- 503 and UNAVAILABLE while not ready or draining --------------------------------------------


class LoadedModel(MlflowPyfuncModel):
    """The wrapper model with a fixed signature and no MLflow model behind it (requests never reach predict)."""

    @property
    def io(self) -> ModelIO:
        return IO

    def load(self) -> bool:
        return bool(self.ready)


def loaded_model() -> LoadedModel:
    metrics = ServingMetrics(NAME, registry=CollectorRegistry())
    model = LoadedModel(
        NAME, Path("/nonexistent"), max_batch_size=8, max_latency_s=0.0, metrics=metrics, arrivals=ArrivalTracker()
    )
    model.ready = True
    return model


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LoadedModel, TestClient]]:
    """The model behind KServe's app as the server builds it (once: the app is process-wide)."""
    assert FASTAPI_APP_IMPORT_STRING == "kserve.model_server:app"  # where create_application() wires routes
    model = loaded_model()
    repository = ModelRepository()
    repository.update(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, DataPlane(repository), ModelRepositoryExtension(repository), 0)
    with TestClient(kserve_application(rest, model), raise_server_exceptions=False) as client:
        yield model, client


def lean_post(model: MlflowPyfuncModel, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST through the lean route; anything it passes on answers 599."""

    async def kserve(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    route = FastInferenceRoute(kserve, model=model)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-type", b"application/json")]}
    asyncio.run(route(scope, receive, send))
    return int(sent[0]["status"]), json.loads(sent[1]["body"])


def test_kserve_application_serves_kserve_routes(served: tuple[LoadedModel, TestClient]) -> None:
    _, client = served
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get(f"/v2/models/{NAME}").json()["inputs"] == [
        {"name": "input_0", "datatype": "FP64", "shape": [-1, 2]}
    ]


def test_inference_is_503_on_every_rest_route_until_warm_and_once_shutting_down(
    served: tuple[LoadedModel, TestClient],
) -> None:
    model, client = served

    def answers() -> set[tuple[int, str]]:
        seen = set()
        for path, body in ((f"/v2/models/{NAME}/infer", V2_BODY), (f"/v1/models/{NAME}:predict", V1_BODY)):
            status, answer = lean_post(model, path, body)
            seen.add((status, answer["error"]))
            response = client.post(path, json=body)
            seen.add((response.status_code, response.json()["error"]))
        return seen

    not_ready = f"Model with name {NAME} is not ready."
    shutting_down = f"{not_ready} {SHUTTING_DOWN}"
    model.ready = False
    assert answers() == {(503, not_ready)}  # warming up: no shutdown message
    model.ready = True
    asyncio.run(model.batcher.drain())
    assert answers() == {(503, shutting_down)}  # refused at the batch queue
    model.stop()
    assert answers() == {(503, shutting_down)}  # refused at the readiness check (KServe's handlers check first)


class AbortingContext:
    """Records ``abort`` like a gRPC servicer context (which raises to end the call)."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.RpcError(details)


@pytest.mark.parametrize(
    ("error", "code", "details"),
    [
        (ModelNotReady(NAME, SHUTTING_DOWN), grpc.StatusCode.UNAVAILABLE, f"is not ready. {SHUTTING_DOWN}"),
        (ModelNotReady(NAME), grpc.StatusCode.UNAVAILABLE, f"Model with name {NAME} is not ready."),
        (InvalidInput("input 'x' is missing"), grpc.StatusCode.INVALID_ARGUMENT, "input 'x' is missing"),
    ],
    ids=["shutting-down", "warming-up", "kserve-mapping-kept"],
)
def test_grpc_status_of_errors(error: Exception, code: grpc.StatusCode, details: str) -> None:
    context = AbortingContext()
    with pytest.raises(grpc.RpcError):
        asyncio.run(_ExceptionToStatus().handle_exception(error, None, context, "ModelInfer"))
    assert context.aborted is not None
    assert context.aborted[0] is code
    assert details in context.aborted[1]


# --- the port file ------------------------------------------------------------------------------


def test_port_file_is_replaced_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text("stale")
    write_port_file(path, {"http": 8080, "grpc": None})
    assert json.loads(path.read_text()) == {"http": 8080, "grpc": None}
    assert [entry.name for entry in tmp_path.iterdir()] == ["ports.json"]


def test_port_file_in_a_missing_directory_fails_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_port_file(tmp_path / "missing" / "ports.json", {"http": 1, "grpc": 2})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run", [uvloop.run, asyncio.run], ids=["uvloop (the server's loop)", "asyncio"])
def test_rest_connections_do_not_wait_for_delayed_acks(run: Callable[[Coroutine[Any, Any, int]], int]) -> None:
    # asyncio turns Nagle off only on sockets whose protocol says TCP; with it on, the two writes of
    # each response (headers, body) waited for the client's delayed ACK, about 40 ms a request.
    listener = _listen_http(0, 8)

    async def accepted_nodelay() -> int:
        options: list[int] = []

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            options.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        while not options:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()
        return options[0]

    assert run(asyncio.wait_for(accepted_nodelay(), timeout=10)) != 0
