"""The lean HTTP protocol's bookkeeping, in a real uvicorn server on 127.0.0.1 (in-process, so its state is visible).

Its answers over the wire are tested against the real server process in tests/integration/test_model_server.py.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from prometheus_client import CollectorRegistry

from model_wrappers.instrumentation import ArrivalTracker
from model_wrappers.lean_http import LeanHttpProtocol, LeanRoute
from model_wrappers.metrics import ServingMetrics
from model_wrappers.model import MlflowPyfuncModel
from model_wrappers.signature import FieldSpec, InputKind, ModelIO

NAME = "m"
IO = ModelIO(
    InputKind.TENSOR,
    inputs=(FieldSpec("input_0", "FP64", (-1, 2), np.dtype("float64")),),
    outputs=(FieldSpec("output_0", "FP64", (-1,), np.dtype("float64")),),
)


class SummingModel(MlflowPyfuncModel):
    """The wrapper model with a fixed signature and a row sum instead of an MLflow model."""

    @property
    def io(self) -> ModelIO:
        return IO

    def _predict_rows(self, arrays: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        return {"output_0": arrays["input_0"].sum(axis=1)}


async def not_lean(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 599, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


@contextmanager
def lean_server(model: MlflowPyfuncModel) -> Iterator[int]:
    route = LeanRoute(model, model.metrics)
    protocol: Any = functools.partial(LeanHttpProtocol, route=route)
    server = uvicorn.Server(uvicorn.Config(not_lean, http=protocol, log_config=None, access_log=False, lifespan="off"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        yield int(listener.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_request_cut_off_mid_body_is_no_longer_counted_as_arriving() -> None:
    # The batcher closes a batch early only while nobody is on the way; a leaked arrival would make
    # every later batch wait out the latency budget.
    metrics = ServingMetrics(NAME, registry=CollectorRegistry())
    model = SummingModel(
        NAME, Path("/nonexistent"), max_batch_size=8, max_latency_s=0.0, metrics=metrics, arrivals=ArrivalTracker()
    )
    model.ready = True
    head = (
        f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    with lean_server(model) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(head + b'{"inputs":')
            wait_for(lambda: model.arrivals.arriving == 1)
        wait_for(lambda: model.arrivals.arriving == 0)
        body = b'{"inputs": [{"name": "input_0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}'
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(head.replace(b"100", str(len(body)).encode()) + body)
            answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'"data":[3.0]}]}')
    assert model.arrivals.arriving == 0
