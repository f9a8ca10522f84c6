"""The model wrapper server on 127.0.0.1: V1/V2 over REST and gRPC, signature checks, errors, metrics."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import grpc
import mlflow
import numpy as np
import pytest
import requests
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from tests.support.served_models import (
    RunningServer,
    running_server,
    save_city_label,
    save_iris_classifier,
    scrape,
)

JSON = {"content-type": "application/json"}
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_iris_classifier(tmp_path_factory.mktemp("iris") / "model")


@pytest.fixture(scope="module")
def iris_server(iris_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(iris_dir, "iris", tmp_path_factory.mktemp("logs"), grpc=True) as server:
        yield server


@pytest.fixture(scope="module")
def city_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    model_dir = save_city_label(tmp_path_factory.mktemp("city") / "model")
    with running_server(model_dir, "city", tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module")
def iris_expected(iris_dir: Path) -> list[int]:
    return [int(label) for label in mlflow.pyfunc.load_model(str(iris_dir)).predict(ROWS)]


def v2_body(name: str, rows: np.ndarray, datatype: str = "FP32") -> dict[str, object]:
    return {"inputs": [{"name": name, "shape": list(rows.shape), "datatype": datatype, "data": rows.ravel().tolist()}]}


def test_health_endpoints(iris_server: RunningServer) -> None:
    assert requests.get(f"{iris_server.url}/v2/health/live", timeout=10).json() == {"live": True}
    assert requests.get(f"{iris_server.url}/v2/health/ready", timeout=10).json() == {"ready": True}
    assert requests.get(f"{iris_server.url}/v1/models/iris", timeout=10).json() == {"name": "iris", "ready": True}
    assert grpc_stub(iris_server).ServerReady(pb.ServerReadyRequest()).ready


def test_v2_metadata_lists_the_signature(iris_server: RunningServer) -> None:
    metadata = requests.get(f"{iris_server.url}/v2/models/iris", timeout=10).json()
    assert metadata == {
        "name": "iris",
        "versions": None,
        "platform": "",
        "inputs": [{"name": "input_0", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "output_0", "datatype": "INT64", "shape": [-1]}],
    }


# The lean JSON route and KServe's own V2 handler (taken when the request asks for per-output
# parameters) must answer identically.
KSERVE_ROUTE = {"outputs": [{"name": "output_0", "parameters": {"binary_data": False}}]}


@pytest.mark.parametrize("extra", [{}, KSERVE_ROUTE], ids=["lean-route", "kserve-route"])
def test_v2_rest_infer(iris_server: RunningServer, iris_expected: list[int], extra: dict[str, object]) -> None:
    response = requests.post(
        f"{iris_server.url}/v2/models/iris/infer", json={"id": "r1", **v2_body("input_0", ROWS), **extra}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_name": "iris",
        "model_version": None,
        "id": "r1",
        "parameters": None,
        "outputs": [{"name": "output_0", "shape": [3], "datatype": "INT64", "parameters": None, "data": iris_expected}],
    }


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def raw_post(path: str, body: bytes, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(reader: BinaryIO) -> RawResponse:
    status = int(reader.readline().split()[1])
    headers = {}
    while line := reader.readline().rstrip(b"\r\n"):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status, headers, reader.read(int(headers.get("content-length", 0))))


def exchange(server: RunningServer, payload: bytes, responses: int) -> tuple[list[RawResponse], bool]:
    """Send raw bytes on one connection and read ``responses`` answers; also whether the server then closed it."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as connection:
        connection.sendall(payload)
        reader = connection.makefile("rb")
        answers = [read_response(reader) for _ in range(responses)]
        connection.settimeout(0.5)
        try:
            closed = reader.read(1) == b""
        except TimeoutError:
            closed = False  # still open: keep-alive
    return answers, closed


def v2_json(request_id: str, rows: np.ndarray = ROWS, **extra: object) -> bytes:
    return json.dumps({"id": request_id, **v2_body("input_0", rows), **extra}).encode()


def test_lean_and_kserve_routes_send_the_same_headers_and_keep_the_connection(iris_server: RunningServer) -> None:
    # JSON inference is answered by the lean HTTP protocol, a request for per-output parameters by KServe's
    # handler behind uvicorn's ASGI cycle: a client must not tell them apart.
    infer = "/v2/models/iris/infer"
    for body in (v2_json("lean"), v2_json("kserve", **KSERVE_ROUTE), b'{"inputs": []}'):
        (answer,), closed = exchange(iris_server, raw_post(infer, body), 1)
        assert set(answer.headers) == {"date", "server", "content-type", "content-length"}, answer.headers
        assert answer.headers["server"] == "uvicorn"
        assert answer.headers["content-type"] == "application/json"
        assert int(answer.headers["content-length"]) == len(answer.body)
        assert not closed


@pytest.mark.parametrize(
    ("version", "headers"), [("1.0", ()), ("1.1", ("Connection: close",))], ids=["http-1.0", "connection-close"]
)
def test_a_connection_the_client_ends_is_closed_after_the_answer(
    iris_server: RunningServer, iris_expected: list[int], version: str, headers: tuple[str, ...]
) -> None:
    (answer,), closed = exchange(
        iris_server, raw_post("/v2/models/iris/infer", v2_json("a"), *headers, version=version), 1
    )
    assert answer.status == 200
    assert answer.headers["connection"] == "close"
    assert json.loads(answer.body)["outputs"][0]["data"] == iris_expected
    assert closed


def test_pipelined_requests_are_answered_in_order(iris_server: RunningServer, iris_expected: list[int]) -> None:
    # Sent at once: the first goes the lean way, the others queue in uvicorn behind it, whatever their route.
    payload = b"".join(
        [
            raw_post("/v2/models/iris/infer", v2_json("first")),
            raw_post("/v2/models/iris/infer", v2_json("second", **KSERVE_ROUTE)),
            raw_post("/v1/models/iris:predict", json.dumps({"instances": ROWS.tolist()}).encode()),
            raw_post("/v2/models/iris/infer", v2_json("fourth", ROWS[:, :3])),
            raw_post("/v2/models/iris/infer", v2_json("fifth")),
        ]
    )
    answers, closed = exchange(iris_server, payload, 5)
    assert [answer.status for answer in answers] == [200, 200, 200, 400, 200]
    bodies = [json.loads(answer.body) for answer in answers]
    assert [bodies[i]["id"] for i in (0, 1, 4)] == ["first", "second", "fifth"]
    assert bodies[2] == {"predictions": iris_expected}
    assert "input 'input_0' has shape [3, 3], expected [-1, 4]" in bodies[3]["error"]
    assert not closed


def test_expect_100_continue_is_answered_before_the_body(iris_server: RunningServer, iris_expected: list[int]) -> None:
    body = v2_json("continued")
    head = raw_post("/v2/models/iris/infer", b"", "Expect: 100-continue").replace(
        b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
    )
    with socket.create_connection(("127.0.0.1", iris_server.http_port), timeout=10) as connection:
        connection.sendall(head)
        reader = connection.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        connection.sendall(body)
        answer = read_response(reader)
    assert answer.status == 200
    assert json.loads(answer.body)["outputs"][0]["data"] == iris_expected


def test_v2_rest_binary_extension_goes_through_kserve(iris_server: RunningServer, iris_expected: list[int]) -> None:
    header = json.dumps(
        {"inputs": [{"name": "input_0", "shape": [3, 4], "datatype": "FP32", "parameters": {"binary_data_size": 48}}]}
    ).encode()
    response = requests.post(
        f"{iris_server.url}/v2/models/iris/infer",
        data=header + ROWS.tobytes(),
        headers={"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == iris_expected


def test_v1_rest_predict(iris_server: RunningServer, iris_expected: list[int]) -> None:
    response = requests.post(f"{iris_server.url}/v1/models/iris:predict", json={"instances": ROWS.tolist()}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": iris_expected}


def grpc_stub(server: RunningServer) -> pb_grpc.GRPCInferenceServiceStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return pb_grpc.GRPCInferenceServiceStub(channel)


def test_grpc_v2_infer_with_typed_contents(iris_server: RunningServer, iris_expected: list[int]) -> None:
    stub = grpc_stub(iris_server)
    assert stub.ModelReady(pb.ModelReadyRequest(name="iris")).ready
    contents = pb.InferTensorContents(fp32_contents=ROWS.ravel())
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input_0", datatype="FP32", shape=list(ROWS.shape), contents=contents
    )
    response = stub.ModelInfer(pb.ModelInferRequest(model_name="iris", inputs=[tensor]))
    assert [(output.name, output.datatype, list(output.shape)) for output in response.outputs] == [
        ("output_0", "INT64", [3])
    ]
    assert list(response.outputs[0].contents.int64_contents) == iris_expected


def test_grpc_v2_infer_with_raw_contents(iris_server: RunningServer, iris_expected: list[int]) -> None:
    stub = grpc_stub(iris_server)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input_0", datatype="FP32", shape=list(ROWS.shape))
    response = stub.ModelInfer(
        pb.ModelInferRequest(model_name="iris", inputs=[tensor], raw_input_contents=[ROWS.tobytes()])
    )
    assert np.frombuffer(response.raw_output_contents[0], dtype=np.int64).tolist() == iris_expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (v2_body("features", ROWS), "input 'features' is not in the model signature; expected inputs: input_0"),
        (v2_body("input_0", ROWS.astype(np.float64), "FP64"), "input 'input_0' has datatype FP64, expected FP32"),
        (v2_body("input_0", ROWS[:, :3]), "input 'input_0' has shape [3, 3], expected [-1, 4]"),
        ({"inputs": []}, "the request has no inputs"),
    ],
    ids=["wrong-name", "wrong-dtype", "wrong-shape", "no-inputs"],
)
def test_v2_signature_mismatch_is_400_naming_the_field(
    iris_server: RunningServer, body: dict[str, object], message: str
) -> None:
    response = requests.post(f"{iris_server.url}/v2/models/iris/infer", json=body, timeout=10)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_v1_values_of_the_wrong_type_are_400(iris_server: RunningServer) -> None:
    response = requests.post(
        f"{iris_server.url}/v1/models/iris:predict", json={"instances": [["a", "b", "c", "d"]]}, timeout=10
    )
    assert response.status_code == 400
    assert "input 'input_0' holds values that are not FP32" in response.json()["error"]


def test_grpc_signature_mismatch_is_invalid_argument(iris_server: RunningServer) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input_0", datatype="FP64", shape=[1, 4], contents=pb.InferTensorContents(fp64_contents=[1, 2, 3, 4])
    )
    with pytest.raises(grpc.RpcError) as raised:
        grpc_stub(iris_server).ModelInfer(pb.ModelInferRequest(model_name="iris", inputs=[tensor]))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'input_0' has datatype FP64, expected FP32" in raised.value.details()


def test_column_signature_as_dataframe_with_strings_as_bytes(city_server: RunningServer) -> None:
    metadata = requests.get(f"{city_server.url}/v2/models/city", timeout=10).json()
    assert metadata["inputs"] == [
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["outputs"] == [{"name": "output_0", "datatype": "BYTES", "shape": [-1]}]
    body = {
        "inputs": [
            {"name": "income", "shape": [2], "datatype": "FP64", "data": [1.5, 0.25]},
            {"name": "city", "shape": [2, 1], "datatype": "BYTES", "data": ["Oslo", "Kyiv"]},
            {"name": "age", "shape": [2], "datatype": "INT64", "data": [30, 7]},
        ]
    }
    response = requests.post(f"{city_server.url}/v2/models/city/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == [
        {"name": "output_0", "shape": [2], "datatype": "BYTES", "parameters": None, "data": ["Oslo:31.5", "Kyiv:7.25"]}
    ]
    records = {"instances": [{"city": "Lima", "age": 41, "income": 2.25}]}
    v1 = requests.post(f"{city_server.url}/v1/models/city:predict", json=records, timeout=10)
    assert v1.json() == {"predictions": ["Lima:43.25"]}


def test_column_missing_is_400_naming_it(city_server: RunningServer) -> None:
    body = {"inputs": [{"name": "city", "shape": [1], "datatype": "BYTES", "data": ["Oslo"]}]}
    response = requests.post(f"{city_server.url}/v2/models/city/infer", json=body, timeout=10)
    assert response.status_code == 400
    assert "input 'age' is missing; expected inputs: city, age, income" in response.json()["error"]


def test_classifier_predictions_are_counted_by_class(iris_server: RunningServer, iris_expected: list[int]) -> None:
    def counts() -> dict[str, float]:
        prefix = "model_prediction_total{class="
        return {
            series.split('"')[1]: value
            for series, value in scrape(iris_server).items()
            if series.startswith(prefix) and 'model_name="iris"' in series
        }

    before = counts()
    response = requests.post(f"{iris_server.url}/v2/models/iris/infer", json=v2_body("input_0", ROWS), timeout=10)
    assert response.status_code == 200
    after = counts()
    expected = {str(label): float(iris_expected.count(label)) for label in set(iris_expected)}
    assert {label: after[label] - before.get(label, 0.0) for label in after if after[label] != before.get(label)} == (
        expected
    )
