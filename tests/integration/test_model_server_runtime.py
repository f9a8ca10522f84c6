"""The wrapper under concurrent load: batching correctness, batch failures, readiness, shutdown, Prometheus."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from serving_core.processes import log_tail, stop_process, wait_until
from tests.conftest import REPO_ROOT, in_ci
from tests.support.prometheus import local_prometheus
from tests.support.served_models import RunningServer, running_server, save_sleeper, save_slow_sum, scrape

MAX_BATCH = 8
CALLERS = 16
REQUESTS_PER_CALLER = 6


SERVER_ARGS = ("--max-batch-size", str(MAX_BATCH), "--max-latency-ms", "50", "--latency-buckets", "0.01,0.1,1,10")


@pytest.fixture(scope="module")
def sum_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_slow_sum(tmp_path_factory.mktemp("slow-sum") / "model")


@pytest.fixture(scope="module")
def sum_server(sum_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(sum_dir, "slow-sum", tmp_path_factory.mktemp("logs"), *SERVER_ARGS) as server:
        yield server


def caller_rows(caller: int, request: int) -> np.ndarray:
    """1-3 rows of 3 values unique to this caller and request; every fifth request is poisoned (negative)."""
    rows = 1 + (caller + request) % 3
    values = np.arange(rows * 3, dtype=np.float64).reshape(rows, 3) + caller * 1000 + request * 10
    if poisoned(caller, request):
        values[0, 0] = -1.0
    return values


def poisoned(caller: int, request: int) -> bool:
    return (caller * REQUESTS_PER_CALLER + request) % 5 == 4


def post(server: RunningServer, rows: np.ndarray) -> requests.Response:
    return post_to(server, "slow-sum", rows)


def run_load(server: RunningServer) -> dict[tuple[int, int], requests.Response]:
    def one_caller(caller: int) -> list[tuple[tuple[int, int], requests.Response]]:
        return [
            ((caller, request), post(server, caller_rows(caller, request))) for request in range(REQUESTS_PER_CALLER)
        ]

    with ThreadPoolExecutor(CALLERS) as pool:
        return {key: response for results in pool.map(one_caller, range(CALLERS)) for key, response in results}


@pytest.fixture(scope="module")
def load_results(sum_server: RunningServer) -> dict[tuple[int, int], requests.Response]:
    return run_load(sum_server)


def test_every_caller_gets_exactly_its_rows_in_order(load_results: dict[tuple[int, int], requests.Response]) -> None:
    for (caller, request), response in load_results.items():
        if poisoned(caller, request):
            continue
        assert response.status_code == 200, response.text
        rows = caller_rows(caller, request)
        assert response.json()["outputs"][0]["data"] == (rows.sum(axis=1) * 2).tolist()
        assert response.json()["outputs"][0]["shape"] == [rows.shape[0]]


def test_a_failing_request_fails_alone_with_500(load_results: dict[tuple[int, int], requests.Response]) -> None:
    codes = {response.status_code for (caller, request), response in load_results.items() if poisoned(caller, request)}
    assert codes == {500}
    assert "negative values are not allowed" in next(
        response.text for (caller, request), response in load_results.items() if poisoned(caller, request)
    )


def test_concurrent_requests_were_batched_within_the_limit(
    sum_server: RunningServer, load_results: dict[tuple[int, int], requests.Response]
) -> None:
    metrics = scrape(sum_server)
    label = 'model_name="slow-sum"'
    batches = metrics[f"model_batch_requests_count{{{label}}}"]
    merged_requests = metrics[f"model_batch_requests_sum{{{label}}}"]
    assert merged_requests == len(load_results)  # the warm-up prediction does not go through the batcher
    assert batches < merged_requests  # some predict calls served several callers
    assert metrics[f'model_batch_size_bucket{{le="{float(MAX_BATCH)}",{label}}}'] == batches


def test_errors_are_counted_by_status_code(
    sum_server: RunningServer, load_results: dict[tuple[int, int], requests.Response]
) -> None:
    metrics = scrape(sum_server)
    failed = sum(1 for response in load_results.values() if response.status_code == 500)
    ok = sum(1 for response in load_results.values() if response.status_code == 200)
    assert metrics['model_request_errors_total{code="500",model_name="slow-sum",protocol="v2"}'] == failed
    assert metrics['model_requests_total{code="500",model_name="slow-sum",protocol="v2"}'] == failed
    assert metrics['model_requests_total{code="200",model_name="slow-sum",protocol="v2"}'] == ok
    assert metrics['model_queue_depth{model_name="slow-sum"}'] == 0


def test_prometheus_scrapes_request_error_and_batch_counts(sum_dir: Path, tmp_path: Path) -> None:
    if not in_ci() and shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make system-deps)")
    good, poisoned_count, bad_shape = 30, 4, 3
    with (
        running_server(sum_dir, "slow-sum", tmp_path, *SERVER_ARGS) as server,
        local_prometheus(tmp_path, [f"127.0.0.1:{server.http_port}"]) as prometheus,
    ):
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda index: post(server, np.full((1, 3), float(index))).status_code, range(good)))
        codes += [post(server, np.full((1, 3), -1.0)).status_code for _ in range(poisoned_count)]
        codes += [post(server, np.ones((1, 2))).status_code for _ in range(bad_shape)]
        assert codes == [200] * good + [500] * poisoned_count + [400] * bad_shape
        total = good + poisoned_count + bad_shape
        deadline = time.monotonic() + 60
        while prometheus.scalar('sum(model_requests_total{model_name="slow-sum"})') != total:
            assert time.monotonic() < deadline, prometheus.query("model_requests_total")
            time.sleep(0.5)
        by_code = {
            str(sample["metric"]["code"]): float(sample["value"][1])  # type: ignore[index]
            for sample in prometheus.query('sum by (code) (model_requests_total{model_name="slow-sum"} > 0)')
        }
        assert by_code == {"200": good, "500": poisoned_count, "400": bad_shape}
        assert prometheus.scalar('sum(model_request_errors_total{code=~"5.."})') == poisoned_count
        assert prometheus.scalar("sum(model_request_duration_seconds_count)") == total
        assert prometheus.scalar('sum(model_request_duration_seconds_bucket{le="10.0"})') == total
        # Requests that fail decoding never reach the batcher.
        assert prometheus.scalar("sum(model_batch_requests_sum)") == good + poisoned_count


def test_not_ready_until_the_warm_up_succeeds(tmp_path: Path) -> None:
    model_dir = save_slow_sum(tmp_path / "model", warmup_fails=True)
    with running_server(model_dir, "no-warmup", tmp_path, wait_for="live") as server:
        deadline = time.monotonic() + 120
        while "failed to load or warm up" not in server.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, server.log_path.read_text(errors="replace")
            time.sleep(0.5)
        assert server.live()
        assert requests.get(f"{server.url}/v2/models/no-warmup/ready", timeout=5).status_code == 503
        assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 503
        assert requests.get(f"{server.url}/v1/models/no-warmup", timeout=5).status_code == 503
        assert post_to(server, "no-warmup", np.ones((1, 3))).status_code == 503


def post_to(server: RunningServer, name: str, rows: np.ndarray) -> requests.Response:
    body = {
        "inputs": [{"name": "input_0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]
    }
    return requests.post(f"{server.url}/v2/models/{name}/infer", json=body, timeout=30)


@pytest.mark.parametrize("batching", [(), ("--max-batch-size", "1")], ids=["batching-on", "batching-off"])
def test_sigterm_drains_in_flight_requests(tmp_path: Path, batching: tuple[str, ...]) -> None:
    # Without batching the predict runs on the event loop, inside the lean protocol's parser callback.
    model_dir = save_sleeper(tmp_path / "model")
    with running_server(model_dir, "sleeper", tmp_path, *batching) as server:
        results: list[requests.Response] = []
        caller = threading.Thread(target=lambda: results.append(post_to(server, "sleeper", np.array([[1.5]]))))
        caller.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        caller.join(timeout=30)
        assert server.process.wait(timeout=30) == 0
        assert [response.status_code for response in results] == [200]
        assert results[0].json()["outputs"][0]["data"] == [1.5]
        assert "model server stopped" in server.log_path.read_text(errors="replace")


def test_cli_serve_rejects_a_directory_without_mlmodel(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiserving", "serve", str(tmp_path), "--port", "1"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 3
    assert f"error: {tmp_path} holds no MLmodel file" in result.stderr


@contextmanager
def server_on_port_zero(model_dir: Path, name: str, log_dir: Path) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    """``python -m model_wrappers --port 0 --grpc-port 0 --port-file F``; yields the server and F's JSON."""
    port_file = log_dir / f"{name}.ports.json"
    log_path = log_dir / f"{name}-port-zero.log"
    command = [sys.executable, "-m", "model_wrappers", "--model-dir", str(model_dir), "--model-name", name]
    command += ["--port", "0", "--grpc-port", "0", "--port-file", str(port_file)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        )
    try:
        try:
            wait_until(port_file.exists, timeout_s=120, what=f"the port file of {name}", process=process)
        except Exception as error:
            raise AssertionError(f"{error}\n{log_tail(log_path)}") from error
        ports = json.loads(port_file.read_text())
        yield RunningServer(name, ports["http"], ports["grpc"], process, log_path), ports
    finally:
        stop_process(process)


def grpc_infer(server: RunningServer, rows: np.ndarray) -> pb.ModelInferResponse:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input_0",
        datatype="FP64",
        shape=list(rows.shape),
        contents=pb.InferTensorContents(fp64_contents=rows.ravel()),
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        return stub.ModelInfer(pb.ModelInferRequest(model_name=server.name, inputs=[tensor]), timeout=30)


def test_port_zero_serves_on_the_ports_in_the_port_file(sum_dir: Path, tmp_path: Path) -> None:
    with server_on_port_zero(sum_dir, "slow-sum", tmp_path) as (server, ports):
        assert sorted(ports) == ["grpc", "http"]
        assert all(isinstance(port, int) and port > 0 for port in ports.values())
        assert ports["http"] != ports["grpc"]
        log = server.log_path.read_text(errors="replace")
        assert f"listening on http port {ports['http']}" in log
        assert f"listening on grpc port {ports['grpc']}" in log
        assert server.live()  # listening when the file appears, before the model is ready
        wait_until(server.ready, timeout_s=120, what="model slow-sum", process=server.process)
        rows = np.array([[1.0, 2.0, 3.0]])
        response = post(server, rows)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [12.0]
        assert list(grpc_infer(server, rows).outputs[0].contents.fp64_contents) == [12.0]


def test_grpc_inference_before_warm_up_is_unavailable(tmp_path: Path) -> None:
    model_dir = save_slow_sum(tmp_path / "model", warmup_fails=True)
    with server_on_port_zero(model_dir, "no-warmup", tmp_path) as (server, _):
        wait_until(
            lambda: "failed to load or warm up" in server.log_path.read_text(errors="replace"),
            timeout_s=120,
            what="the failed warm-up",
            process=server.process,
        )
        with pytest.raises(grpc.RpcError) as raised:
            grpc_infer(server, np.ones((1, 3)))
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
        assert raised.value.details() == "Model with name no-warmup is not ready."
