"""The benchmark model as a Ray Serve application, for ``benchmarks/serving.py`` (runs in ``.venv-ray``).

``python ray_serve_app.py MODEL_DIR PORT_FILE MAX_BATCH_SIZE MAX_LATENCY_MS`` starts a one-CPU local
Ray cluster, serves ``POST /predict`` (``{"inputs": [[...], ...]}``) on a free port of 127.0.0.1,
writes ``{"http": PORT}`` to PORT_FILE once the application is running, and shuts Ray down on SIGTERM.
MAX_BATCH_SIZE 1 turns batching off; otherwise ``@serve.batch`` batches up to MAX_BATCH_SIZE requests
(Ray counts requests) waiting at most MAX_LATENCY_MS, and ``max_ongoing_requests`` lets that many
reach the replica at once (Ray's default of 5 would cap every batch at 5).
"""

import json
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import ray
from ray import serve
from starlette.requests import Request

OBJECT_STORE_BYTES = 100 * 1024 * 1024  # the model is loaded by the replica, not passed through the store


def rows_of(body: dict[str, Any]) -> np.ndarray:
    return np.asarray(body["inputs"], dtype=np.float64)


@serve.deployment
class Unbatched:
    def __init__(self, model_dir: str) -> None:
        self.model = mlflow.pyfunc.load_model(model_dir)

    async def __call__(self, request: Request) -> list[Any]:
        return np.asarray(self.model.predict(rows_of(await request.json()))).tolist()


def batched(max_batch_size: int, max_latency_ms: float) -> Any:
    @serve.deployment(max_ongoing_requests=2 * max_batch_size)
    class Batched:
        def __init__(self, model_dir: str) -> None:
            self.model = mlflow.pyfunc.load_model(model_dir)

        async def __call__(self, request: Request) -> list[Any]:
            return await self.predict(rows_of(await request.json()))

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=max_latency_ms / 1000)
        async def predict(self, requests: list[np.ndarray]) -> list[list[Any]]:
            outputs = np.asarray(self.model.predict(np.concatenate(requests)))
            bounds = np.cumsum([len(rows) for rows in requests])[:-1]
            return [part.tolist() for part in np.split(outputs, bounds)]

    return Batched


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    model_dir, port_file = sys.argv[1], Path(sys.argv[2])
    max_batch_size, max_latency_ms = int(sys.argv[3]), float(sys.argv[4])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    # address="local": a cluster of its own, never one another benchmark server (or a user) started.
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    deployment = Unbatched if max_batch_size <= 1 else batched(max_batch_size, max_latency_ms)
    serve.run(deployment.bind(model_dir), route_prefix="/predict")
    port_file.write_text(json.dumps({"http": port}), encoding="utf-8")
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
