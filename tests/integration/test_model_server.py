"""The model wrapper server on 127.0.0.1: V1/V2 over REST and gRPC, signature checks, errors, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def test_v2_metadata_lists_the_signature(iris_server: RunningServer) -> None:
    metadata = requests.get(f"{iris_server.url}/v2/models/iris", timeout=10).json()
    assert metadata == {
        "name": "iris",
        "versions": None,
        "platform": "",
        "inputs": [{"name": "input_0", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "output_0", "datatype": "INT64", "shape": [-1]}],
    }


def test_v2_rest_infer(iris_server: RunningServer, iris_expected: list[int]) -> None:
    response = requests.post(
        f"{iris_server.url}/v2/models/iris/infer", json={"id": "r1", **v2_body("input_0", ROWS)}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_name": "iris",
        "model_version": None,
        "id": "r1",
        "parameters": None,
        "outputs": [{"name": "output_0", "shape": [3], "datatype": "INT64", "parameters": None, "data": iris_expected}],
    }


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
